"""Teams against a scripted model on loopback: hierarchy, swarm and negotiation, end to end."""

from __future__ import annotations

from typing import Any

import pytest

from hive.api.agentteam import AgentTeamSpec, RunOutcome
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.models import OpenAICompatible
from hive.runtime.teams.roster import Approval, ApprovalRequest
from hive.runtime.teams.team import Team, TeamResult
from tests.scripted_model import Script, ScriptedModel, scripted_model

pytestmark = pytest.mark.integration

HIERARCHY: dict[str, Any] = {
    "goal": "A short report on bees",
    "model": {"provider": "openai-compatible", "endpoint": "http://127.0.0.1:1/v1", "name": "m"},
    "pattern": "hierarchical",
    "delegation": {"qualityThreshold": 0.7, "maxRevisions": 2},
    "agents": [
        {"name": "lead", "role": "senior", "subordinates": ["researcher", "writer"]},
        {"name": "researcher", "role": "junior", "capabilities": ["research", "search"]},
        {"name": "writer", "role": "junior", "capabilities": ["writing"]},
    ],
}

PLAN = {
    "subtasks": [
        {"description": "Find three facts about bees", "capabilities": ["research"]},
        {"description": "Write a haiku about bees", "capabilities": ["writing"]},
    ]
}


def spec_of(base: dict[str, Any], **changes: Any) -> AgentTeamSpec:
    return AgentTeamSpec.model_validate({**base, **changes})


async def run_team(
    spec: AgentTeamSpec, script: Script, **team_args: Any
) -> tuple[TeamResult, list[Event], ScriptedModel]:
    with scripted_model(script) as server:
        model = OpenAICompatible(server.url, "m", max_retries=0, backoff_s=0.01)
        bus = EventBus()
        events: list[Event] = []
        bus.subscribe(events.append)
        result = await Team.local(spec, model, bus=bus, **team_args).run("Write about bees")
    return result, events, server


def kinds(events: list[Event]) -> list[EventKind]:
    return [e.kind for e in events]


async def test_a_senior_delegates_by_capability_reviews_and_asks_for_a_revision() -> None:
    script: Script = {
        "lead": [
            {"json": PLAN},
            {"when": "gave researcher", "json": {"score": 0.4, "feedback": "cite sources"}},
            {"when": "gave researcher", "json": {"score": 0.9, "feedback": ""}},
            {"when": "gave writer", "json": {"score": 0.8, "feedback": ""}},
            {"when": "final answer", "content": "Bees: three facts and a haiku."},
        ],
        "researcher": [{"content": "Bees dance."}, {"content": "Bees dance (von Frisch, 1967)."}],
        "writer": [{"content": "Striped wings hum / ..."}],
    }
    result, events, server = await run_team(spec_of(HIERARCHY), script)

    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    assert result.output == "Bees: three facts and a haiku."
    by_agent = {d.subordinate: d for d in result.delegations}
    assert by_agent["researcher"].task == "Find three facts about bees"
    assert by_agent["writer"].task == "Write a haiku about bees"
    assert by_agent["researcher"].revisions == 1
    assert by_agent["researcher"].review == 0.9
    assert by_agent["writer"].revisions == 0
    revision = server.requests_of("researcher")[1]["messages"][-1]["content"]
    assert "asks for a revision: cite sources" in revision
    assert "Bees dance." in revision
    synthesis = server.requests_of("lead")[-1]["messages"][-1]["content"]
    assert "von Frisch" in synthesis
    assert "Striped wings" in synthesis
    assert EventKind.REVISION_REQUESTED in kinds(events)
    assert kinds(events)[0] is EventKind.TEAM_STARTED
    assert kinds(events)[-1] is EventKind.TEAM_FINISHED
    assert server.remaining() == 0
    assert result.tokens == 15 * len(server.requests)
    assert {a.name: a.tasks_completed for a in result.agents} == {
        "lead": 1,
        "researcher": 1,
        "writer": 1,
    }


async def test_revisions_stop_at_the_limit_and_the_result_is_taken_below_the_threshold() -> None:
    spec = spec_of(HIERARCHY, delegation={"qualityThreshold": 0.9, "maxRevisions": 1})
    script: Script = {
        "lead": [
            {"json": {"subtasks": [PLAN["subtasks"][0]]}},
            {"json": {"score": 0.2, "feedback": "more"}},
            {"json": {"score": 0.3, "feedback": "still more"}},
            {"content": "done"},
        ],
        "researcher": [{"content": "a"}, {"content": "b"}],
    }
    result, events, _server = await run_team(spec, script)
    assert result.outcome is RunOutcome.SUCCEEDED
    assert result.delegations[0].revisions == 1
    reviews = [e for e in events if e.kind is EventKind.REVIEWED]
    assert "accepted below 0.9 after 1 revisions" in reviews[-1].data["feedback"]


async def test_a_plan_the_model_cannot_give_falls_back_to_the_whole_task() -> None:
    script: Script = {
        "lead": [
            {"content": "sure! here is my plan: do it"},
            {"content": "{not json"},
            {"content": '```json\n{"subtasks": []}\n```'},
            {"content": "no review either"},
            {"content": "nope"},
            {"content": "still no"},
            {"content": "The answer."},
        ],
        "*": [{"content": "work"}],
    }
    result, events, _ = await run_team(spec_of(HIERARCHY), script)
    assert result.outcome is RunOutcome.SUCCEEDED
    assert result.output == "The answer."
    assert len(result.delegations) == 1
    assert result.delegations[0].task == "Write about bees"
    assert result.delegations[0].review is None
    decomposed = next(e for e in events if e.kind is EventKind.DECOMPOSED)
    assert decomposed.data["fallback"] == "no valid plan"


async def test_approval_rejects_a_result_and_the_rest_still_count() -> None:
    spec = spec_of(HIERARCHY, delegation={"approvalRequired": True})
    asked: list[ApprovalRequest] = []

    async def approver(request: ApprovalRequest) -> Approval:
        asked.append(request)
        return Approval(request.subordinate != "writer", "no poems today")

    script: Script = {
        "lead": [
            {"json": PLAN},
            {"when": "gave researcher", "json": {"score": 0.9}},
            {"when": "gave writer", "json": {"score": 0.9}},
            {"when": "final answer", "content": "Facts only."},
        ],
        "researcher": [{"content": "Bees dance."}],
        "writer": [{"content": "A poem."}],
    }
    result, events, server = await run_team(spec, script, approver=approver)
    assert result.outcome is RunOutcome.SUCCEEDED
    assert sorted(r.subordinate for r in asked) == ["researcher", "writer"]
    approved = {d.subordinate: d.approved for d in result.delegations}
    assert approved == {"researcher": True, "writer": False}
    assert EventKind.REJECTED in kinds(events)
    synthesis = server.requests_of("lead")[-1]["messages"][-1]["content"]
    assert "Bees dance." in synthesis
    assert "A poem." not in synthesis


async def test_by_default_the_seniors_model_decides_approval() -> None:
    spec = spec_of(HIERARCHY, delegation={"approvalRequired": True})
    script: Script = {
        "lead": [
            {"json": {"subtasks": [PLAN["subtasks"][0]]}},
            {"json": {"score": 1}},
            {"when": "Do you approve", "json": {"approved": False, "reason": "unsourced"}},
        ],
        "researcher": [{"content": "x"}],
    }
    result, events, _ = await run_team(spec, script)
    assert result.outcome is RunOutcome.FAILED
    assert result.message == "no delegated result was approved"
    rejected = next(e for e in events if e.kind is EventKind.REJECTED)
    assert rejected.data == {"of": "researcher", "reason": "unsourced"}


async def test_a_cycle_that_appears_at_run_time_is_caught() -> None:
    spec = spec_of(HIERARCHY)
    spec.agents[1].subordinates = ["lead"]  # admission would refuse this; the runtime must too
    spec.agents[1].role = "senior"  # type: ignore[assignment]
    script: Script = {
        "lead": [{"json": {"subtasks": [PLAN["subtasks"][0]]}}],
        "researcher": [{"json": {"subtasks": [{"description": "loop"}]}}],
    }
    result, _, _ = await run_team(spec, script)
    assert result.outcome is RunOutcome.FAILED
    assert result.message == "delegation cycle at run time: lead -> researcher -> lead"


async def test_delegation_deeper_than_the_limit_is_refused_at_run_time() -> None:
    spec = spec_of(
        HIERARCHY,
        agents=[
            {"name": "lead", "role": "senior", "subordinates": ["mid"]},
            {"name": "mid", "role": "senior", "subordinates": ["leaf"]},
            {"name": "leaf", "role": "junior"},
        ],
    )
    spec.delegation.max_depth = 1
    script: Script = {
        "lead": [{"json": {"subtasks": [{"description": "a"}]}}],
        "mid": [{"json": {"subtasks": [{"description": "b"}]}}],
    }
    result, _, _ = await run_team(spec, script)
    assert result.outcome is RunOutcome.FAILED
    assert "lead -> mid -> leaf is deeper than delegation.maxDepth 1" in (result.message or "")


SWARM: dict[str, Any] = {
    "goal": "Compare two databases",
    "model": {"provider": "openai-compatible", "endpoint": "http://127.0.0.1:1/v1", "name": "m"},
    "pattern": "swarm",
    "swarm": {"maxRounds": 4, "convergenceThreshold": 0.9, "maxParallel": 2},
    "agents": [
        {"name": "coordinator", "role": "senior"},
        {"name": "a", "role": "junior"},
        {"name": "b", "role": "junior"},
    ],
}

SUBGOALS = {
    "subgoals": [
        {"name": "postgres", "description": "Describe Postgres", "outputs": ["pg"]},
        {"name": "redis", "description": "Describe Redis", "outputs": ["rd"]},
        {"name": "compare", "description": "Compare them", "inputs": ["pg", "rd"]},
    ]
}


async def test_a_swarm_works_parts_in_parallel_and_stops_when_answers_converge() -> None:
    work = [{"content": "part"}] * 12
    script: Script = {
        "coordinator": [
            {"json": SUBGOALS},
            {"when": "one answer", "content": "Postgres is relational; Redis is in memory."},
            {"when": "one answer", "content": "Postgres is relational; Redis is in memory!"},
            *work,
        ],
        "a": list(work),
        "b": list(work),
    }
    result, events, server = await run_team(spec_of(SWARM), script)
    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    assert result.rounds == 2
    converged = next(e for e in events if e.kind is EventKind.CONVERGED)
    assert converged.data["similarity"] >= 0.9
    assert {p["name"]: p["phase"] for p in result.plan} == {
        "postgres": "done",
        "redis": "done",
        "compare": "done",
    }
    compare_requests = [
        r for r in server.requests if "Your part: Compare them" in str(r["messages"][-1]["content"])
    ]
    assert len(compare_requests) == 2, "the dependent part ran once per round"
    assert "- postgres: part" in compare_requests[0]["messages"][-1]["content"]
    assert "The team's current answer" in compare_requests[1]["messages"][-1]["content"]


async def test_a_swarm_that_never_converges_stops_at_the_round_limit() -> None:
    spec = spec_of(SWARM, swarm={"maxRounds": 2, "convergenceThreshold": 0.99})
    work = [{"content": "part"}] * 12
    script: Script = {
        "coordinator": [
            {"json": {"subgoals": [{"name": "only", "description": "Do it"}]}},
            {"when": "one answer", "content": "alpha beta"},
            {"when": "one answer", "content": "gamma delta"},
            *work,
        ],
        "a": list(work),
        "b": list(work),
    }
    result, events, _ = await run_team(spec, script)
    assert result.outcome is RunOutcome.SUCCEEDED
    assert result.rounds == 2
    assert result.output == "gamma delta"
    assert EventKind.CONVERGED not in kinds(events)


NEGOTIATION: dict[str, Any] = {
    "goal": "Pick a database",
    "model": {"provider": "openai-compatible", "endpoint": "http://127.0.0.1:1/v1", "name": "m"},
    "pattern": "negotiation",
    "negotiation": {"consensusThreshold": 0.66, "maxRounds": 2},
    "agents": [
        {"name": "ann", "role": "specialist"},
        {"name": "bob", "role": "specialist"},
        {"name": "cy", "role": "specialist"},
    ],
}


def ballot(*votes: str) -> dict[str, Any]:
    return {
        "votes": [
            {"proposal": i, "vote": v, "reason": f"{v} because"} for i, v in enumerate(votes, 1)
        ]
    }


async def test_negotiation_reaches_consensus_in_the_second_round() -> None:
    script: Script = {
        "ann": [
            {"json": {"proposal": "Postgres", "rationale": "mature"}},
            {"json": ballot("accept", "reject", "reject")},
            {"when": "Round 1 ended", "json": {"proposal": "Postgres", "rationale": "still"}},
            {"json": ballot("accept", "accept", "abstain")},
        ],
        "bob": [
            {"json": {"proposal": "Redis", "rationale": "fast"}},
            {"json": ballot("reject", "accept", "reject")},
            {"when": "Round 1 ended", "json": {"proposal": "Postgres", "rationale": "fine"}},
            {"json": ballot("accept", "accept", "abstain")},
        ],
        "cy": [
            {"json": {"proposal": "SQLite", "rationale": "simple"}},
            {"json": ballot("reject", "reject", "accept")},
            {"when": "Round 1 ended", "json": {"proposal": "MySQL", "rationale": "hmm"}},
            {"json": ballot("accept", "abstain", "accept")},
        ],
    }
    result, events, server = await run_team(spec_of(NEGOTIATION), script)
    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    assert result.rounds == 2
    assert result.output == "Postgres"
    assert result.message == "agreed in round 2 on the proposal of ann with 100% support"
    second_round = server.requests_of("cy")[2]["messages"][-1]["content"]
    assert "(bob) Redis: 1 accept, 2 reject" in second_round
    assert "ann reject: reject because" in second_round
    assert sum(1 for e in events if e.kind is EventKind.VOTED) == 6


async def test_negotiation_deadlock_ends_with_a_reported_outcome() -> None:
    spec = spec_of(NEGOTIATION, negotiation={"consensusThreshold": 0.9, "maxRounds": 1})
    script: Script = {
        "ann": [
            {"json": {"proposal": "Postgres"}},
            {"json": ballot("accept", "reject", "abstain")},
        ],
        "bob": [{"json": {"proposal": "Redis"}}, {"json": ballot("accept", "accept", "reject")}],
        "cy": [{"content": "I refuse to answer in JSON"}] * 3
        + [{"json": ballot("reject", "reject", "accept")}],
    }
    result, events, _ = await run_team(spec, script)
    assert result.outcome is RunOutcome.DEADLOCKED
    assert result.message == (
        "deadlock after 1 rounds: no proposal reached 90% support; best was ann's with 67%"
    )
    assert [t.author for t in result.tallies] == ["ann", "bob"], "cy gave no valid proposal"
    assert EventKind.DEADLOCKED in kinds(events)


async def test_the_team_token_budget_stops_the_run() -> None:
    spec = spec_of(HIERARCHY, budget={"maxTokens": 20})
    script: Script = {
        "lead": [{"json": PLAN}] + [{"json": {"score": 1}}] * 4,
        "*": [{"content": "work"}] * 4,
    }
    result, _, _ = await run_team(spec, script)
    assert result.outcome is RunOutcome.FAILED
    assert result.message is not None
    assert result.message.startswith("budget.maxTokens:")


async def test_a_model_server_that_is_down_fails_the_run_with_the_reason() -> None:
    spec = spec_of(HIERARCHY)
    model = OpenAICompatible("http://127.0.0.1:9/v1", "m", max_retries=1, backoff_s=0.01)
    result = await Team.local(spec, model).run()
    assert result.outcome is RunOutcome.FAILED
    assert "unreachable" in (result.message or "")
    assert "model 'm' at http://127.0.0.1:9/v1" in (result.message or "")


async def test_an_authors_own_vote_among_abstentions_is_no_consensus() -> None:
    spec = spec_of(NEGOTIATION, negotiation={"consensusThreshold": 0.5, "maxRounds": 1})
    abstain = {"json": ballot("abstain", "abstain", "abstain")}
    script: Script = {
        name: [{"json": {"proposal": f"{name}'s idea"}}, abstain] for name in ("ann", "bob", "cy")
    }
    result, _, _ = await run_team(spec, script)
    assert result.outcome is RunOutcome.DEADLOCKED
    assert all(t.support == 1.0 for t in result.tallies), "each author accepts its own"
