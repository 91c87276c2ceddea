"""Reasoning in teams against a scripted model on loopback: an agent with `reasoning:
chain-of-thought` thinks through a recorded trace before it acts, a senior with `planning: mcts`
searches for its plan; both are kept in the run report, published on the bus and rendered under
the task that produced them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console

from hive.api.agentteam import AgentTeamSpec, RunOutcome
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.models import OpenAICompatible
from hive.runtime.reasoning.render import render_run
from hive.runtime.teams.team import Team, TeamResult
from tests.scripted_model import Script, ScriptedModel, scripted_model

pytestmark = pytest.mark.integration

MODEL = {"provider": "openai-compatible", "endpoint": "http://127.0.0.1:1/v1", "name": "m"}


def team(lead: dict[str, Any], researcher: dict[str, Any]) -> AgentTeamSpec:
    return AgentTeamSpec.model_validate(
        {
            "goal": "A short report on bees",
            "model": MODEL,
            "pattern": "hierarchical",
            "agents": [
                {"name": "lead", "role": "senior", "subordinates": ["researcher"], **lead},
                {"name": "researcher", "role": "junior", **researcher},
            ],
        }
    )


async def run(spec: AgentTeamSpec, script: Script) -> tuple[TeamResult, list[Event], ScriptedModel]:
    with scripted_model(script) as server:
        model = OpenAICompatible(server.url, "m", max_retries=0, backoff_s=0.01)
        bus = EventBus()
        events: list[Event] = []
        bus.subscribe(events.append)
        result = await Team.local(spec, model, bus=bus).run("How do bees share where food is?")
    return result, events, server


def rendered(report: dict[str, Any]) -> str:
    console = Console(width=200, record=True, highlight=False)
    console.print(render_run(report))
    return console.export_text()


LEAD_PLAIN: list[dict[str, Any]] = [
    {"json": {"subtasks": [{"description": "Explain the bee dance"}]}},
    {"when": "Rate the result", "json": {"score": 0.9, "feedback": ""}},
    {"when": "final answer", "content": "Bees dance to share direction and distance."},
]


async def test_an_agent_reasoning_by_chain_of_thought_records_its_trace_with_the_run() -> None:
    spec = team({}, {"reasoning": "chain-of-thought"})
    script: Script = {
        "lead": LEAD_PLAIN,
        "researcher": [
            {
                "json": {
                    "branches": [
                        {
                            "hypothesis": "Bees communicate by dancing",
                            "evidence": ["von Frisch watched marked bees"],
                            "confidence": 0.6,
                        },
                        {"hypothesis": "Bees leave scent trails", "confidence": 0.3},
                    ]
                }
            },
            {"json": {"choice": 0, "reason": "best supported"}},
            {
                "json": {
                    "branches": [
                        {
                            "hypothesis": "The waggle dance encodes distance",
                            "conclusion": "Bees dance to say how far food is",
                            "confidence": 0.7,
                            "final": True,
                        }
                    ]
                }
            },
            {"json": {"correct": False, "reason": "it leaves out the direction"}},
            {
                "json": {
                    "hypothesis": "The waggle run's angle gives the direction, its length the "
                    "distance",
                    "conclusion": "Bees dance to share direction and distance",
                    "confidence": 0.9,
                    "final": True,
                }
            },
            {"json": {"correct": True}},
            {"content": "The waggle dance gives direction and distance."},
        ],
    }
    result, events, server = await run(spec, script)

    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    assert server.remaining() == 0
    # the agent acted on its reasoning
    acting = server.requests_of("researcher")[-1]["messages"][-1]["content"]
    assert "It concluded: Bees dance to share direction and distance" in acting
    # kept with the run: one record, tied to the researcher's task
    [record] = result.reasoning
    assert record["kind"] == "chain-of-thought"
    assert record["agent"] == "researcher"
    assert record["outcome"] == "answered"
    assert record["corrections"] == 1
    assert record["confidence"] == 0.9
    researcher_task = next(t for t in result.profile["tasks"] if t["agent"] == "researcher")
    assert record["task_id"] == researcher_task["task_id"]
    statuses = [s["status"] for s in record["trace"]["steps"]]
    assert "wrong" in statuses
    assert "candidate" in statuses
    # on the bus, for tracing
    thought = [e.kind for e in events if e.agent == "researcher" and "thought" in e.kind]
    assert thought[0] is EventKind.THOUGHT_STARTED
    assert EventKind.THOUGHT_CORRECTED in thought
    assert thought[-1] is EventKind.THOUGHT_FINISHED
    # the report round-trips as JSON and renders the trace under the researcher's task
    report = json.loads(json.dumps(result.wire(), default=str))
    text = rendered(report)
    assert text.index("researcher: Explain the bee dance") < text.index("chain of thought")
    assert "correction: The waggle run's angle" in text
    assert "1 corrections, outcome answered" in text
    # the reasoning's model calls count in the profile
    steps = [s["step"] for s in result.profile["steps"] if s["agent"] == "researcher"]
    assert steps.count("reasoning") == 6


async def test_a_senior_planning_with_mcts_records_its_search() -> None:
    spec = team({"planning": "mcts", "mcts": {"iterations": 3, "horizon": 2, "branching": 2}}, {})
    propose = "Propose up to 2"
    score = "Score these steps"
    script: Script = {
        "lead": [
            {
                "when": propose,
                "json": {"actions": ["Observe the waggle dance", "Read von Frisch"]},
            },
            {"when": propose, "json": {"actions": ["Summarise the dance", "DONE"]}},
            {"when": propose, "json": {"actions": ["Summarise the dance", "DONE"]}},
            {"when": score, "json": {"score": 0.5}},
            {"when": score, "json": {"score": 0.6}},
            {"when": score, "json": {"score": 0.9}},
            {"when": "Rate the result", "json": {"score": 0.9, "feedback": ""}},
            {"when": "Rate the result", "json": {"score": 0.9, "feedback": ""}},
            {"when": "final answer", "content": "They dance."},
        ],
        "researcher": [{"content": "Observed."}, {"content": "Summarised."}],
    }
    result, events, _server = await run(spec, script)

    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    [record] = result.reasoning
    assert record["kind"] == "mcts"
    assert record["agent"] == "lead"
    search = record["search"]
    assert search["iterations"] == 3
    assert search["stoppedBy"] == "iterations"
    assert {r["action"] for r in search["root"]} == {"Observe the waggle dance", "Read von Frisch"}
    assert sum(r["visits"] for r in search["root"]) == 3
    # the plan the search found is the plan the senior delegated
    planned = [s for s in search["bestSequence"] if s != "DONE"]
    assert planned
    assert [d.task for d in result.delegations] == planned
    lead_task = next(t for t in result.profile["tasks"] if t["agent"] == "lead")
    assert record["task_id"] == lead_task["task_id"]
    assert any(e.kind is EventKind.PLAN_SEARCHED and e.agent == "lead" for e in events)
    text = rendered(json.loads(json.dumps(result.wire(), default=str)))
    assert "plan search (MCTS): 3 iterations" in text
    assert "plan: " + " → ".join(search["bestSequence"]) in text
    planning = [s for s in result.profile["steps"] if s["step"] == "planning"]
    assert len(planning) == 6  # 3 proposals, 3 scores


async def test_a_negotiator_reasons_once_about_the_task_and_proposes_from_it() -> None:
    spec = AgentTeamSpec.model_validate(
        {
            "goal": "Pick a database",
            "model": MODEL,
            "pattern": "negotiation",
            "negotiation": {"consensusThreshold": 0.5, "maxRounds": 2},
            "agents": [
                {"name": "ann", "role": "specialist", "reasoning": "chain-of-thought"},
                {"name": "bob", "role": "specialist"},
            ],
        }
    )
    both = {"votes": [{"proposal": 1, "vote": "accept"}, {"proposal": 2, "vote": "reject"}]}
    answer = {"hypothesis": "Relational data", "conclusion": "Postgres", "confidence": 0.8}
    script: Script = {
        "ann": [
            {"json": {"branches": [{**answer, "final": True}]}},
            {"json": {"correct": True}},
            {"json": {"proposal": "Postgres", "rationale": "it concluded so"}},
            {"json": both},
        ],
        "bob": [{"json": {"proposal": "Redis", "rationale": "fast"}}, {"json": both}],
    }
    with scripted_model(script) as server:
        model = OpenAICompatible(server.url, "m", max_retries=0, backoff_s=0.01)
        result = await Team.local(spec, model).run("Pick a database")
    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    assert result.output == "Postgres"
    proposing = server.requests_of("ann")[2]["messages"][-1]["content"]
    assert "It concluded: Postgres" in proposing
    [record] = result.reasoning
    assert (record["agent"], record["task_id"], record["outcome"]) == ("ann", None, "answered")
