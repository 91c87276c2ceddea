"""The scores teams decide with: delegation choice, review quality, similarity, support."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.runtime.teams.negotiation import best, count
from hive.runtime.teams.schemas import Ballot, Choice, Proposal, Review, Vote
from hive.runtime.teams.scoring import (
    Candidate,
    capability_match,
    choose,
    delegation_score,
    similarity,
    support,
    updated_quality,
)

skills = st.frozensets(st.sampled_from(["research", "writing", "python", "review", "search"]))
candidates = st.builds(
    Candidate,
    name=st.text("abc", min_size=1, max_size=3),
    capabilities=skills,
    active=st.integers(0, 5),
    capacity=st.integers(1, 5),
    quality=st.none() | st.floats(0, 1),
)


@settings(max_examples=200, deadline=None)
@given(candidates, skills)
def test_scores_stay_between_zero_and_one(candidate: Candidate, required: frozenset[str]) -> None:
    assert 0 <= delegation_score(candidate, required) <= 1
    assert 0 <= capability_match(required, candidate.capabilities) <= 1


@settings(max_examples=200, deadline=None)
@given(candidates, skills)
def test_more_load_never_raises_the_score(candidate: Candidate, required: frozenset[str]) -> None:
    busier = Candidate(
        candidate.name,
        candidate.capabilities,
        candidate.active + 1,
        candidate.capacity,
        candidate.quality,
    )
    assert delegation_score(busier, required) <= delegation_score(candidate, required)


def test_the_capable_idle_well_reviewed_subordinate_is_chosen() -> None:
    writer = Candidate("writer", frozenset({"writing"}), 0, 1, None)
    researcher = Candidate("researcher", frozenset({"research"}), 0, 1, None)
    assert choose([writer, researcher], ["research"]).name == "researcher"
    busy = Candidate("researcher", frozenset({"research"}), 1, 1, 0.2)
    second = Candidate("intern", frozenset({"research"}), 0, 1, 0.9)
    assert choose([busy, second], ["research"]).name == "intern"
    assert choose([writer, researcher], []).name == "writer", "a tie goes to the first listed"


def test_review_quality_is_a_moving_average() -> None:
    assert updated_quality(None, 0.4) == 0.4
    assert updated_quality(0.4, 1.0) == 0.7


def test_reviews_out_of_ten_or_a_hundred_come_back_to_one() -> None:
    assert Review.model_validate({"score": 8}).score == 0.8
    assert Review.model_validate({"score": 75}).score == 0.75
    assert Review.model_validate({"score": 0.3}).score == 0.3


def test_similarity_of_texts() -> None:
    assert similarity("Redis is fast", "redis is FAST!") == pytest.approx(1.0)
    assert similarity("alpha beta", "gamma delta") == 0.0
    assert 0 < similarity("redis is fast", "redis is slow") < 1


def test_votes_are_counted_once_and_authors_accept_their_own() -> None:
    proposals = [("ann", Proposal(proposal="A")), ("bob", Proposal(proposal="B"))]
    ballots = {
        "ann": Ballot(votes=[Vote(proposal=2, vote=Choice.REJECT)]),
        "bob": Ballot(
            votes=[
                Vote(proposal=1, vote=Choice.ACCEPT),
                Vote(proposal=1, vote=Choice.REJECT),  # a second vote on #1 is ignored
                Vote(proposal=2, vote=Choice.REJECT),  # bob on his own: always accept
                Vote(proposal=9, vote=Choice.ACCEPT),  # no such proposal
            ]
        ),
        "cy": Ballot(
            votes=[Vote(proposal=1, vote=Choice.ABSTAIN), Vote(proposal=2, vote=Choice.ACCEPT)]
        ),
    }
    first, second = count(proposals, ballots)
    assert (first.accepts, first.rejects, first.abstains) == (2, 0, 1)
    assert (second.accepts, second.rejects, second.abstains) == (2, 1, 0)
    assert first.support == 1.0
    assert best([first, second]) is first
    assert support(0, 0) == 0.0
