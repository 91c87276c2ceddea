"""Trace validation: real team runs on the scripted model (a real OpenAI-compatible server on
loopback) replayed through the TLA+ spec of their protocol with the real TLC. At least 20 runs
per pattern, their answers, review scores, failures, approvals and votes drawn from a seed;
and a runtime changed on purpose (one more revision than its spec allows) fails the check."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hive.api.agentteam import AgentTeamSpec
from hive.runtime.events import Event, EventBus
from hive.runtime.models import OpenAICompatible
from hive.runtime.teams.roster import Approval, ApprovalRequest
from hive.runtime.teams.team import Team
from hive.verify.protocol import protocol_of_spec
from hive.verify.traces import validate_traces
from tests.scripted_model import Script, scripted_model

pytestmark = pytest.mark.integration

MODEL = {"provider": "openai-compatible", "endpoint": "http://127.0.0.1:1/v1", "name": "m"}
RUNS = 20


async def run_team(
    spec: AgentTeamSpec,
    script: Script,
    *,
    approvals: list[bool] | None = None,
    runtime_spec: AgentTeamSpec | None = None,
) -> list[Event]:
    decisions = list(approvals or [])

    async def approver(request: ApprovalRequest) -> Approval:
        return Approval(decisions.pop(0) if decisions else True, "scripted")

    with scripted_model(script) as server:
        model = OpenAICompatible(server.url, "m", max_retries=0, backoff_s=0.01)
        bus = EventBus()
        events: list[Event] = []
        bus.subscribe(events.append)
        team = Team.local(spec, model, bus=bus, approver=approver)
        if runtime_spec is not None:
            team.roster.spec = runtime_spec
        await team.run("Write a note on bees")
    return events


def review(score: float) -> dict[str, Any]:
    return {"when": "Rate the result", "json": {"score": score, "feedback": "more detail"}}


def hierarchical_case(seed: int) -> tuple[AgentTeamSpec, Script, list[bool]]:
    """A chain lead -> (mid ->) worker, one subtask per senior, drawn from `seed`."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test cases, not secrets
    revisions = rng.choice([0, 1, 2])
    approval = rng.random() < 0.3
    three_levels = rng.random() < 0.5
    agents: list[dict[str, Any]] = [{"name": "worker", "role": "junior"}]
    if three_levels:
        agents = [
            {"name": "lead", "role": "senior", "subordinates": ["mid"]},
            {"name": "mid", "role": "senior", "subordinates": ["worker"]},
            *agents,
        ]
    else:
        agents = [{"name": "lead", "role": "senior", "subordinates": ["worker"]}, *agents]
    spec = AgentTeamSpec.model_validate(
        {
            "goal": "g",
            "model": MODEL,
            "pattern": "hierarchical",
            "delegation": {
                "maxDepth": 3,
                "maxRevisions": revisions,
                "qualityThreshold": 0.7,
                "approvalRequired": approval,
            },
            "agents": agents,
        }
    )
    plan = {"json": {"subtasks": [{"description": "the part"}]}}
    low = rng.randint(0, revisions + 1)  # reviews below the threshold before a good one
    reviews = [review(0.2)] * low + [review(0.9)]
    fails_at = rng.randint(0, low) if rng.random() < 0.3 else None
    work: list[dict[str, Any]] = [{"content": f"answer {k}"} for k in range(low + 1)]
    if fails_at is not None:
        work[fails_at] = {"status": 503}
    reviewer = "mid" if three_levels else "lead"
    script: dict[str, list[dict[str, Any]]] = {
        reviewer: [plan, *reviews, {"when": "final answer", "content": "the answer"}],
        "worker": work,
    }
    if three_levels:
        script["lead"] = [plan, review(0.9), {"when": "final answer", "content": "done"}]
    approvals = [rng.random() < 0.7 for _ in range(2)]
    return spec, script, approvals


def swarm_case(seed: int) -> tuple[AgentTeamSpec, Script]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test cases, not secrets
    rounds = rng.randint(1, 3)
    converge = rng.random() < 0.5
    spec = AgentTeamSpec.model_validate(
        {
            "goal": "g",
            "model": MODEL,
            "pattern": "swarm",
            "swarm": {"maxRounds": rounds, "convergenceThreshold": 0.99, "maxParallel": 2},
            "agents": [
                {"name": "coordinator", "role": "senior"},
                {"name": "a", "role": "specialist"},
                {"name": "b", "role": "specialist"},
            ],
        }
    )
    parts = rng.choice([1, 2])
    plan = {
        "when": "subgoals",
        "json": {
            "subgoals": [
                {"name": f"p{k}", "description": f"Part {k}", "outputs": [f"o{k}"]}
                for k in range(parts)
            ]
        },
    }
    synthesis = [
        {"when": "one answer", "content": "same answer" if converge else f"answer {k} " * (k + 1)}
        for k in range(rounds)
    ]

    def work() -> list[dict[str, Any]]:
        steps = []
        for k in range(rounds * parts):
            failed = rng.random() < 0.15
            steps.append(
                {"when": "Your part", **({"status": 503} if failed else {"content": f"w{k}"})}
            )
        return steps

    script: dict[str, list[dict[str, Any]]] = {
        "coordinator": [plan, *synthesis, *work()],
        "a": work(),
        "b": work(),
    }
    return spec, script


def negotiation_case(seed: int) -> tuple[AgentTeamSpec, Script]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test cases, not secrets
    rounds = rng.randint(1, 3)
    names = ["ann", "bob", "cy"]
    spec = AgentTeamSpec.model_validate(
        {
            "goal": "g",
            "model": MODEL,
            "pattern": "negotiation",
            "negotiation": {
                "maxRounds": rounds,
                "consensusThreshold": rng.choice([0.5, 0.66, 1.0]),
            },
            "agents": [{"name": n, "role": "specialist"} for n in names],
        }
    )
    script: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        steps: list[dict[str, Any]] = []
        for r in range(rounds):
            steps.append({"json": {"proposal": f"{name} {r}", "rationale": "why"}})
            votes = [
                {"proposal": k, "vote": rng.choice(["accept", "reject", "abstain"]), "reason": "r"}
                for k in range(1, len(names) + 1)
            ]
            steps.append({"json": {"votes": votes}})
        script[name] = steps
    return spec, script


async def test_hierarchical_runs_replay_through_the_spec(tmp_path: Path) -> None:
    cases = [hierarchical_case(seed) for seed in range(24)]
    by_team: dict[str, list[tuple[AgentTeamSpec, list[Event]]]] = {}
    for spec, script, approvals in cases:
        events = await run_team(spec, script, approvals=approvals)
        by_team.setdefault(spec.model_dump_json(), []).append((spec, events))
    checked = 0
    for number, runs in enumerate(by_team.values()):
        spec = runs[0][0]
        verdicts = validate_traces(
            protocol_of_spec(spec),
            [events for _, events in runs],
            tmp_path / f"team-{number}",
            threshold=spec.delegation.quality_threshold,
        )
        for verdict in verdicts:
            assert verdict.ok, (verdict.message, verdict.steps)
            checked += 1
    assert checked == 24


async def replayed(case: Callable[[int], tuple[AgentTeamSpec, Script]], tmp_path: Path) -> int:
    """Run RUNS seeded cases of one pattern, replay each team's runs through its spec; every
    run must replay whole. Returns how many were checked."""
    by_team: dict[str, list[tuple[AgentTeamSpec, list[Event]]]] = {}
    for seed in range(RUNS):
        spec, script = case(seed)
        by_team.setdefault(spec.model_dump_json(), []).append((spec, await run_team(spec, script)))
    checked = 0
    for number, runs in enumerate(by_team.values()):
        verdicts = validate_traces(
            protocol_of_spec(runs[0][0]),
            [events for _, events in runs],
            tmp_path / f"team-{number}",
            threshold=0.7,
        )
        for verdict in verdicts:
            assert verdict.ok, (verdict.message, verdict.steps)
            checked += 1
    return checked


async def test_swarm_runs_replay_through_the_spec(tmp_path: Path) -> None:
    assert await replayed(swarm_case, tmp_path) == RUNS


async def test_negotiation_runs_replay_through_the_spec(tmp_path: Path) -> None:
    assert await replayed(negotiation_case, tmp_path) == RUNS


async def test_a_runtime_that_revises_once_more_than_its_spec_fails_the_check(
    tmp_path: Path,
) -> None:
    spec = AgentTeamSpec.model_validate(
        {
            "goal": "g",
            "model": MODEL,
            "pattern": "hierarchical",
            "delegation": {"maxRevisions": 1, "qualityThreshold": 0.7},
            "agents": [
                {"name": "lead", "role": "senior", "subordinates": ["worker"]},
                {"name": "worker", "role": "junior"},
            ],
        }
    )
    script: Script = {
        "lead": [
            {"json": {"subtasks": [{"description": "the part"}]}},
            review(0.2),
            review(0.2),
            review(0.9),
            {"when": "final answer", "content": "the answer"},
        ],
        "worker": [{"content": f"answer {k}"} for k in range(3)],
    }
    # the runtime's step changed: its revision guard lets one more revision through
    loose = spec.model_copy(
        update={"delegation": spec.delegation.model_copy(update={"max_revisions": 2})}
    )
    changed = await run_team(spec, script, runtime_spec=loose)
    faithful = await run_team(spec, script)
    changed_verdict, faithful_verdict = validate_traces(
        protocol_of_spec(spec), [changed, faithful], tmp_path, threshold=0.7
    )
    assert faithful_verdict.ok, faithful_verdict.message
    assert not changed_verdict.ok
    assert changed_verdict.message == (
        "the spec cannot take step 6: lead requests a revision from worker"
    )
