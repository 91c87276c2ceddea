"""Graceful degradation against two scripted model servers on loopback, wired as an agent pod
wires it: the team's model fails with HTTP 503, the agent's answers come from the fallback
model, the primary's breaker opens and the agent reports itself reduced (and the team
Degraded); the primary recovers and the agent is back at full by itself."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from hive.api.agentteam import AgentTeamSpec, CapabilityLevel, Role
from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, agent_names, plan_team
from hive.reconcile.meta import Owner
from hive.runtime.events import EventBus, EventKind
from hive.runtime.models import OpenAICompatible
from hive.runtime.resilience.chain import ChainParts
from hive.runtime.resilience.learning import MemoryLearningStore, Strategy
from hive.runtime.resilience.wiring import Resilience, fallback_models
from hive.runtime.teams.progress import ProgressTracker
from tests.scripted_model import ScriptedModel, scripted_model

pytestmark = pytest.mark.integration
OPEN_S = 1.0


@pytest.fixture
def primary() -> Iterator[ScriptedModel]:
    with scripted_model([{"status": 503}] * 200) as served:
        yield served


@pytest.fixture
def fallback() -> Iterator[ScriptedModel]:
    with scripted_model([{"content": "from the fallback"}] * 200) as served:
        yield served


class Sink:
    async def report(self, status: Any) -> None:
        pass


def team_status(entry: dict[str, Any]) -> str:
    owner = Owner("AgentTeam", "t", "default", "uid", generation=1)
    workload = agent_names("t", "lead")["workload"]
    deployments = {
        workload: {
            "metadata": {"name": workload, "generation": 1},
            "status": {"observedGeneration": 1, "availableReplicas": 1, "updatedReplicas": 1},
        }
    }
    spec = {
        "goal": "g",
        "model": {"name": "big", "endpoint": "http://x/v1"},
        "agents": [{"name": "lead", "role": "senior"}],
    }
    planned = plan_team(
        owner,
        spec,
        {"agents": [entry]},
        TeamObserved(deployments=deployments),
        AgentPodSettings("hive"),
        dt.datetime.now(dt.UTC),
    )
    degraded = next(c for c in planned.status.conditions if c.type == "Degraded")
    return f"{degraded.status} {degraded.reason}"


async def test_the_fallback_answers_while_the_primary_is_down_and_full_returns(
    primary: ScriptedModel, fallback: ScriptedModel
) -> None:
    spec = AgentTeamSpec.model_validate(
        {
            "goal": "answer",
            "model": {
                "name": "big",
                "endpoint": primary.url,
                "fallbacks": [{"name": "small", "endpoint": fallback.url}],
            },
            "agents": [{"name": "lead", "role": "senior"}],
            "resilience": {
                "breaker": {"windowSize": 2, "minimumCalls": 2, "openDurationSeconds": OPEN_S}
            },
        }
    )
    store = MemoryLearningStore()
    resilience = Resilience.of(spec.resilience, store)
    resilience.errors.backoff_s = 0.01
    parts = ChainParts(errors=resilience.errors, breakers=resilience.breakers)
    fallbacks = [replace(f, max_retries=0) for f in fallback_models(spec, {}, parts.chain("lead"))]
    parts.degradation = resilience.degrade(spec, fallbacks, "lead")
    bus = EventBus()
    resilience.publish_to(bus)
    model = OpenAICompatible(
        primary.url, "big", max_retries=0, chain=parts.chain("lead")
    ).for_agent("lead")
    tracker = ProgressTracker("lead", Role.SENIOR, Sink(), lambda: 0, resilience=resilience.report)
    ask = [{"role": "user", "content": "what is the answer?"}]
    try:
        for _ in range(3):
            assert (await model.complete(ask)).content == "from the fallback"
        assert resilience.breakers.breakers["model:big"].state == "open"
        assert fallback.requests_of("lead"), "the fallback is asked as the agent"
        entry = tracker.status().wire()
        assert entry["capability"]["level"] == CapabilityLevel.REDUCED
        assert "model:big" in entry["capability"]["reason"]
        assert team_status(entry) == "True CapabilityReduced"
        pattern = next(p for p in store.found.values() if p.failure.dependency == "model:big")
        assert pattern.outcomes[Strategy.FALLBACK_MODEL.value][0] >= 1

        # the primary recovers: after the breaker's open duration it is probed first
        primary.steps.clear()
        primary.steps.extend([{"content": "from the primary"}] * 50)
        await asyncio.sleep(OPEN_S + 0.1)
        assert (await model.complete(ask)).content == "from the primary"
        assert resilience.breakers.breakers["model:big"].state == "closed"
        entry = tracker.status().wire()
        assert entry["capability"]["level"] == CapabilityLevel.FULL
        assert team_status(entry) == "False AsExpected"
        levels = [e.data["level"] for e in bus.history if e.kind is EventKind.CAPABILITY_CHANGED]
        assert levels == ["reduced", "full"]
    finally:
        await model.aclose()
        for f in fallbacks:
            await f.aclose()
