"""Trace validation: a real run's team events replayed through the TLA+ spec of its protocol.

The events a run publishes (runtime/events.py) are mapped to the spec's steps — the same
<<agent, action, detail>> its `last` variable names — and TLC checks that some behaviour of the
spec takes exactly those steps in that order. A runtime that does something the spec does not
allow (a step the spec has no action for, or one in the wrong state) fails the check, naming
the first step the spec cannot take. Hierarchical runs are replayed when every senior gives its
work one subtask (the spec's bound); budgets are left out (the spec counts estimated tokens).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from hive.api.agentteam import Pattern
from hive.errors import HiveError
from hive.runtime.events import Event, EventKind
from hive.verify.protocol import TeamProtocol
from hive.verify.tlaspec import BUILDERS, MODULE, GeneratedSpec, tla_string
from hive.verify.tlc import run_tlc

Step = tuple[str, str, str]


class UnmappableTrace(HiveError):
    """The events hold something the mapping to spec steps cannot express."""


@dataclass
class TraceVerdict:
    """Whether the spec can take a run's steps, and how far it got."""

    ok: bool
    steps: list[Step]
    matched: int  # steps the spec could take, from the first
    message: str = ""


def _outcome(event: Event) -> str:
    return str(event.data.get("outcome", ""))


def hierarchical_steps(events: list[Event], threshold: float) -> list[Step]:
    """The spec steps of a hierarchical run whose seniors each delegate one subtask."""
    steps: list[Step] = []
    chain: list[str] = []
    failing = False  # the top of the chain has failed (its result is not coming)
    low_review: tuple[str, str] | None = None
    for event in events:
        kind, agent, data = event.kind, event.agent, event.data
        if kind is EventKind.TEAM_STARTED:
            chain = [agent]
            steps.append((agent, "takes the task", ""))
        elif kind is EventKind.DELEGATED:
            chain.append(str(data["to"]))
            steps.append((agent, "delegates to", str(data["to"])))
        elif kind is EventKind.FINISHED and chain and agent == chain[-1]:
            steps.append((agent, "works on the task", ""))
        elif kind is EventKind.FAILED and len(chain) > 1 and agent == chain[-1]:
            if not failing:
                steps.append((agent, "fails", "peer failure"))
            steps.append((chain[-2], "gets no result from", agent))
            chain.pop()
            failing = True
        elif kind is EventKind.REVIEWED:
            of, score = str(data["of"]), data.get("score")
            if low_review is not None:  # the second review: accepted below the threshold
                steps.append((agent, "accepts after the last revision the work of", of))
                low_review = None
            elif score is not None and score < threshold:
                low_review = (agent, of)
            else:
                steps.append((agent, "accepts the work of", of))
        elif kind is EventKind.REVISION_REQUESTED:
            low_review = None
            steps.append((agent, "requests a revision from", str(data["of"])))
        elif kind is EventKind.APPROVED:
            steps.append((agent, "has approved the work of", str(data["of"])))
        elif kind is EventKind.REJECTED:
            steps.append((agent, "has the work rejected of", str(data["of"])))
            chain.pop()
            failing = True
        elif kind is EventKind.SYNTHESIZED and len(chain) > 1:
            steps.append((agent, "synthesizes its answer from the work of", chain.pop()))
        elif kind is EventKind.TEAM_FINISHED:
            if low_review is not None:
                raise UnmappableTrace(f"review of {low_review[1]} below the threshold, no decision")
            succeeded = _outcome(event) == "Succeeded"
            steps.append((agent, "answers" if succeeded else "fails the team", ""))
    return steps


def swarm_steps(events: list[Event], max_rounds: int) -> tuple[list[Step], int]:
    """The spec steps of a swarm run, and how many parts its decomposition had."""
    steps: list[Step] = []
    parts = 0
    ordered = list(events)
    for index, event in enumerate(ordered):
        kind, agent, data = event.kind, event.agent, event.data
        if kind is EventKind.TEAM_STARTED:
            steps.append((agent, "takes the task", ""))
        elif kind is EventKind.DECOMPOSED:
            parts = len(data.get("subtasks") or [])
            steps.append((agent, "decomposes the task into parts", ""))
        elif kind is EventKind.FINISHED:
            steps.append((agent, "works on a part", ""))
        elif kind is EventKind.FAILED:
            steps.append((agent, "fails on a part", "peer failure"))
        elif kind is EventKind.SYNTHESIZED:
            number = int(data.get("round", 0))
            later = ordered[index + 1 :]
            if any(e.kind is EventKind.CONVERGED and e.data.get("round") == number for e in later):
                steps.append((agent, "synthesizes and converges in round", str(number)))
            elif number >= max_rounds:
                steps.append((agent, "synthesizes the last round", str(number)))
            else:
                steps.append((agent, "synthesizes and starts round", str(number + 1)))
        elif kind is EventKind.TEAM_FINISHED and _outcome(event) != "Succeeded":
            steps.append((agent, "fails the team", "every part failed"))
    return steps, parts


def negotiation_steps(events: list[Event], agents: tuple[str, ...], max_rounds: int) -> list[Step]:
    """The spec steps of a negotiation run."""
    steps: list[Step] = []
    proposers: list[str] = []
    ballots: dict[str, list[dict[str, object]]] = {}
    collected = False

    def collect(coordinator: str) -> None:
        nonlocal collected
        if not collected:
            steps.append((coordinator, "collects valid proposals:", str(len(proposers))))
            collected = True

    def open_next(coordinator: str, round_number: int, note: str) -> None:
        if round_number < max_rounds:
            steps.append((coordinator, note, str(round_number + 1)))
        else:
            steps.append((coordinator, "ends deadlocked after round", str(round_number)))

    def round_ended(coordinator: str, round_number: int) -> None:
        collect(coordinator)
        if proposers:
            open_next(coordinator, round_number, "has no agreement and opens round")
        else:
            open_next(coordinator, round_number, "has no valid proposal and opens round")

    round_number = 1
    for event in events:
        kind, agent, data = event.kind, event.agent, event.data
        if kind is EventKind.TEAM_STARTED:
            steps.append((agent, "opens round", "1"))
        elif kind is EventKind.ROUND and int(data["round"]) > 1:
            round_ended(agent, round_number)
            round_number = int(data["round"])
            proposers, ballots, collected = [], {}, False
        elif kind is EventKind.DEADLOCKED:
            round_ended(agent, round_number)
        elif kind is EventKind.PROPOSED:
            proposers.append(agent)
        elif kind is EventKind.VOTED:
            ballots[agent] = list(data.get("votes") or [])
        elif kind is EventKind.AGREED:
            collect(agent)
            author = str(data["author"])
            number = [a for a in agents if a in proposers].index(author) + 1
            accepts, rejects = 1, 0
            for voter, votes in ballots.items():
                if voter == author:
                    continue
                choice = next((v.get("vote") for v in votes if v.get("proposal") == number), None)
                accepts += choice == "accept"
                rejects += choice == "reject"
            steps.append((agent, "declares agreement with accepts/rejects", f"{accepts}/{rejects}"))
    return steps


def trace_spec(protocol: TeamProtocol, traces: list[list[Step]]) -> GeneratedSpec:
    """The protocol's module with the traces: TLC explores every behaviour that takes their steps
    (one trace per behaviour, picked by `t`); the states it dumps say how far each trace got."""
    listed = ",\n    ".join(
        "<<"
        + ", ".join("<<" + ", ".join(tla_string(p) for p in step) + ">>" for step in steps)
        + ">>"
        for steps in traces
    )
    body = BUILDERS[protocol.pattern](protocol)
    trace = f"""
Traces == <<
    {listed}
>>
VARIABLES i, t
TraceInit == t \\in 1..Len(Traces) /\\ Init /\\ i = 1 /\\ last = Traces[t][1]
TraceNext ==
    /\\ i < Len(Traces[t]) /\\ Next /\\ last' = Traces[t][i + 1] /\\ i' = i + 1 /\\ t' = t
"""
    return GeneratedSpec(
        module=f"---- MODULE {MODULE} ----\n{body}{trace}====\n",
        config="INIT TraceInit\nNEXT TraceNext\nCONSTRAINT Bounds\n",
        invariants=(),
        temporal=(),
        success="",
        bounds="the runs' own steps",
    )


def steps_of(
    protocol: TeamProtocol, events: list[Event], threshold: float
) -> tuple[TeamProtocol, list[Step]]:
    """The run's steps and the protocol to replay them through (its budget left out)."""
    protocol = dataclasses.replace(protocol, max_tokens=None)
    if protocol.pattern == Pattern.HIERARCHICAL:
        return protocol, hierarchical_steps(events, threshold)
    if protocol.pattern == Pattern.SWARM:
        steps, parts = swarm_steps(events, protocol.swarm_rounds)
        return dataclasses.replace(protocol, swarm_parts=max(1, parts)), steps
    return protocol, negotiation_steps(events, protocol.agents, protocol.negotiation_rounds)


def reached_steps(dump: Path) -> dict[int, int]:
    """The furthest step of each trace among the states TLC dumped."""
    furthest: dict[int, int] = {}
    for block in dump.read_text().split("State ")[1:]:
        i, t = re.search(r"/\\ i = (\d+)", block), re.search(r"/\\ t = (\d+)", block)
        if i and t:
            furthest[int(t.group(1))] = max(furthest.get(int(t.group(1)), 0), int(i.group(1)))
    return furthest


def validate_traces(
    protocol: TeamProtocol,
    runs: list[list[Event]],
    workdir: Path,
    *,
    threshold: float,
    time_limit_s: float = 60.0,
    java: str = "java",
) -> list[TraceVerdict]:
    """Replay each run's events through `protocol`'s spec with TLC (one TLC run per variant of
    the protocol the runs need, e.g. a swarm's number of parts)."""
    mapped = [steps_of(protocol, events, threshold) for events in runs]
    for index, (_, steps) in enumerate(mapped):
        if not steps:
            raise UnmappableTrace(f"run {index + 1} published no team-started event")
    verdicts: list[TraceVerdict | None] = [None] * len(runs)
    variants = sorted({repr(p) for p, _ in mapped})
    for number, variant in enumerate(variants):
        members = [k for k, (p, _) in enumerate(mapped) if repr(p) == variant]
        replayed = mapped[members[0]][0]
        traces = [mapped[k][1] for k in members]
        folder = workdir / f"variant-{number}"
        dump = folder / "states"
        result = run_tlc(
            trace_spec(replayed, traces),
            folder,
            time_limit_s=time_limit_s,
            java=java,
            options=("-deadlock", "-dump", str(dump)),
        )
        furthest = reached_steps(Path(f"{dump}.dump")) if result.outcome == "proved" else {}
        for position, k in enumerate(members):
            steps = traces[position]
            matched = furthest.get(position + 1, 0)
            if result.outcome != "proved":
                verdicts[k] = TraceVerdict(False, steps, 0, result.message or str(result.violated))
            elif matched == len(steps):
                verdicts[k] = TraceVerdict(True, steps, matched)
            else:
                bad = " ".join(p for p in steps[matched] if p)
                message = f"the spec cannot take step {matched + 1}: {bad}"
                verdicts[k] = TraceVerdict(False, steps, matched, message)
    return [v for v in verdicts if v is not None]
