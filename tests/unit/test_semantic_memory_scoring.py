"""How memories are scored, filtered and grouped: similarity x importance x recency decay,
durations, metadata filters, and the duplicate and cluster grouping of consolidation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.errors import InvalidInput
from hive.runtime.memory.consolidation import clusters, duplicate_groups, merged
from hive.runtime.memory.records import (
    MemoryRecord,
    check_filters,
    check_importance,
    check_metadata,
    parse_duration,
    recency_factor,
    score,
    standing,
)

unit = st.floats(min_value=0, max_value=1)
similarity = st.floats(min_value=-1, max_value=1)
age = st.floats(min_value=0, max_value=1e9)
half_life = st.one_of(st.none(), st.floats(min_value=1, max_value=1e8))


@given(similarity, unit, age, half_life)
def test_a_score_lies_between_0_and_the_similarity(s: float, i: float, a: float, h: float) -> None:
    value = score(s, i, a, h)
    assert 0 <= value <= max(s, 0) + 1e-12


@given(similarity, similarity, unit, age, half_life)
def test_more_similar_never_scores_lower(
    s1: float, s2: float, i: float, a: float, h: float | None
) -> None:
    low, high = sorted((s1, s2))
    assert score(low, i, a, h) <= score(high, i, a, h)


@given(similarity, unit, unit, age, half_life)
def test_more_important_never_scores_lower(
    s: float, i1: float, i2: float, a: float, h: float | None
) -> None:
    low, high = sorted((i1, i2))
    assert score(s, low, a, h) <= score(s, high, a, h)


@given(similarity, unit, age, age, half_life)
def test_older_never_scores_higher(
    s: float, i: float, a1: float, a2: float, h: float | None
) -> None:
    young, old = sorted((a1, a2))
    assert score(s, i, old, h) <= score(s, i, young, h)


@given(st.floats(min_value=1, max_value=1e7), st.integers(min_value=0, max_value=10))
def test_every_half_life_halves_the_score(h: float, lives: int) -> None:
    assert recency_factor(lives * h, h) == pytest.approx(0.5**lives, rel=1e-9)
    assert score(0.8, 1.0, lives * h, h) == pytest.approx(0.8 * 0.5**lives, rel=1e-9)


def test_without_decay_age_does_not_matter_and_the_future_counts_as_new() -> None:
    assert recency_factor(1e9, None) == 1.0
    assert recency_factor(-60, 3600) == 1.0
    assert score(1.0, 0.0, 0, None) == 0.5  # importance 0 halves, never zeroes


def test_standing_is_the_score_of_a_perfect_match() -> None:
    record = MemoryRecord(id="a", content="x", importance=0.6, created_at=1000.0)
    assert standing(record, 1000.0 + 86400, 86400) == pytest.approx(0.8 * 0.5)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("12h", 43200), ("7d", 604800), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "ttl") == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "7w", "1h 30m", "-1d"])
def test_bad_durations_name_the_field(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"spec\.retention\.ttl"):
        parse_duration(text, "spec.retention.ttl")


def test_bad_importance_filters_and_metadata_are_refused() -> None:
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(InvalidInput, match="importance"):
            check_importance(bad)
    with pytest.raises(InvalidInput, match="filters"):
        check_filters({"has space": "x"})
    with pytest.raises(InvalidInput, match=r"metadata\.agent"):
        check_metadata({"agent": "someone else"})
    assert check_metadata({"n": 3}) == {"n": "3"}


def test_filters_match_metadata_agent_and_run() -> None:
    record = MemoryRecord(id="a", content="x", metadata={"topic": "ops"}, agent="lead", run="r1")
    assert record.matches({})
    assert record.matches({"topic": "ops", "agent": "lead", "run": "r1"})
    assert not record.matches({"topic": "geo"})
    assert not record.matches({"agent": "helper"})


def vector(*xs: float) -> list[float]:
    v = np.asarray(xs, dtype=np.float32)
    return (v / np.linalg.norm(v)).tolist()


def test_duplicates_group_under_the_most_important_then_newest() -> None:
    records = [
        MemoryRecord(id="a", content="a", importance=0.5, created_at=1, vector=vector(1, 0, 0)),
        MemoryRecord(id="b", content="b", importance=0.9, created_at=2, vector=vector(1, 0.05, 0)),
        MemoryRecord(id="c", content="c", importance=0.5, created_at=3, vector=vector(0, 1, 0)),
        MemoryRecord(id="d", content="d", importance=0.5, created_at=4, vector=vector(1, 0.01, 0)),
    ]
    groups = duplicate_groups(records, 0.99)
    assert [[records[i].id for i in g] for g in groups] == [["b", "a", "d"]]
    keeper = merged(records[1], [records[0], records[3]])
    assert (keeper.id, keeper.sources, keeper.importance) == ("b", ("a", "d"), 0.9)


def test_clusters_need_enough_related_memories() -> None:
    near = [vector(1, 0.3 * k, 0) for k in range(3)]
    records = [
        *(MemoryRecord(id=f"n{k}", content="", created_at=k, vector=v) for k, v in enumerate(near)),
        MemoryRecord(id="far", content="", created_at=9, vector=vector(0, 0, 1)),
    ]
    found = clusters(records, 0.8, 3)
    assert [sorted(records[i].id for i in c) for c in found] == [["n0", "n1", "n2"]]
    assert clusters(records, 0.8, 4) == []
