"""Negotiation: agents propose, vote with reasons, and agree when enough of them accept.

Each round every member proposes a solution with its rationale (a member whose model gives no
valid proposal sits the round out), then every member votes accept, reject or abstain, with a
reason, on every proposal; an author always accepts its own. A proposal is agreed when its
support — accepting votes among those that took a side — reaches the team's consensus
threshold and more than half of the members took a side on it (a quorum: the author's own vote
among abstentions is no consensus); the best supported wins. Otherwise the proposals and votes
go back to the members for the next round, and after the last round the negotiation ends
deadlocked, naming the best proposal and its support.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hive.runtime.events import EventKind
from hive.runtime.teams.members import Member
from hive.runtime.teams.roster import Roster
from hive.runtime.teams.schemas import Ballot, Choice, Proposal
from hive.runtime.teams.scoring import support


@dataclass
class Tally:
    author: str
    proposal: Proposal
    accepts: int = 0
    rejects: int = 0
    abstains: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def support(self) -> float:
        return support(self.accepts, self.rejects)


@dataclass
class NegotiationResult:
    agreed: bool
    rounds: int
    winner: Tally | None
    tallies: list[Tally]
    message: str


def count(proposals: list[tuple[str, Proposal]], ballots: dict[str, Ballot]) -> list[Tally]:
    """Tally every ballot; unknown proposal numbers and second votes on one proposal are ignored."""
    tallies = [Tally(author, p, accepts=1) for author, p in proposals]
    for voter, ballot in ballots.items():
        seen: set[int] = set()
        for vote in ballot.votes:
            index = vote.proposal - 1
            if not 0 <= index < len(tallies) or index in seen:
                continue
            seen.add(index)
            tally = tallies[index]
            if tally.author == voter:
                continue  # an author's own vote is always accept, counted above
            if vote.vote is Choice.ACCEPT:
                tally.accepts += 1
            elif vote.vote is Choice.REJECT:
                tally.rejects += 1
            else:
                tally.abstains += 1
            if vote.reason:
                tally.reasons.append(f"{voter} {vote.vote}: {vote.reason}")
    return tallies


def best(tallies: list[Tally]) -> Tally | None:
    if not tallies:
        return None
    return max(enumerate(tallies), key=lambda pair: (pair[1].support, pair[1].accepts, -pair[0]))[1]


def history_text(round_number: int, tallies: list[Tally]) -> str:
    lines = [f"Round {round_number} ended without agreement. Proposals and their votes:"]
    for tally in tallies:
        lines.append(
            f"- ({tally.author}) {tally.proposal.proposal}: {tally.accepts} accept, "
            f"{tally.rejects} reject, {tally.abstains} abstain"
        )
        lines += [f"    {reason}" for reason in tally.reasons[:6]]
    lines.append("Propose a solution the others can accept.")
    return "\n".join(lines)


async def negotiate(roster: Roster, task: str, coordinator: str) -> NegotiationResult:
    settings = roster.spec.negotiation
    members: list[Member] = list(roster.members.values())
    history = ""
    tallies: list[Tally] = []
    for round_number in range(1, settings.max_rounds + 1):
        roster.rounds = round_number
        await roster.emit(EventKind.ROUND, coordinator, round=round_number)
        async with asyncio.TaskGroup() as group:
            asked = [(m.name, group.create_task(m.propose(task, history))) for m in members]
        proposals = [(name, job.result()) for name, job in asked]
        valid = [(name, p) for name, p in proposals if p is not None]
        if not valid:
            history = f"Round {round_number}: nobody gave a valid proposal."
            continue
        async with asyncio.TaskGroup() as group:
            voting = [(m.name, group.create_task(m.vote(task, valid))) for m in members]
        ballots = {name: job.result() for name, job in voting}
        for voter, ballot in ballots.items():
            await roster.emit(
                EventKind.VOTED,
                voter,
                round=round_number,
                votes=[v.model_dump(mode="json") for v in ballot.votes],
            )
        tallies = count(valid, ballots)
        quorum = len(members) / 2
        agreeable = [
            t
            for t in tallies
            if t.support >= settings.consensus_threshold and t.accepts + t.rejects > quorum
        ]
        leader = best(agreeable)
        if leader is not None:
            await roster.emit(
                EventKind.AGREED,
                coordinator,
                round=round_number,
                author=leader.author,
                proposal=leader.proposal.proposal,
                support=leader.support,
            )
            return NegotiationResult(
                True,
                round_number,
                leader,
                tallies,
                f"agreed in round {round_number} on the proposal of {leader.author} "
                f"with {leader.support:.0%} support",
            )
        history = history_text(round_number, tallies)
    leader = best(tallies)
    if leader is None:
        message = f"deadlock: no valid proposal in {settings.max_rounds} rounds"
    else:
        message = (
            f"deadlock after {settings.max_rounds} rounds: no proposal reached "
            f"{settings.consensus_threshold:.0%} support; best was {leader.author}'s with "
            f"{leader.support:.0%}"
        )
    await roster.emit(EventKind.DEADLOCKED, coordinator, message=message)
    return NegotiationResult(False, settings.max_rounds, leader, tallies, message)
