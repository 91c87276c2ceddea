"""Breakers and error patterns as an agent reports them: its status entry on every change, the
metrics, the team's count of open breakers, and the spec that configures them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Any

import yaml
from prometheus_client import REGISTRY

from hive.api.agentteam import AgentStatus, AgentTeamSpec, BreakerState
from hive.errors import ExternalFailure, Unavailable
from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, breakers_open, plan_team
from hive.reconcile.meta import Owner
from hive.runtime.events import EventBus
from hive.runtime.pod import PodConfig
from hive.runtime.resilience.calls import Call, CallKind, Chain
from hive.runtime.resilience.chain import ChainParts
from hive.runtime.resilience.learning import MemoryLearningStore
from hive.runtime.resilience.wiring import Resilience
from hive.runtime.teams.progress import ProgressTracker

SPEC: dict[str, Any] = {
    "goal": "answer",
    "model": {"name": "m", "endpoint": "http://vllm:8000/v1"},
    "agents": [{"name": "lead", "role": "senior"}],
    "resilience": {"breaker": {"windowSize": 4, "minimumCalls": 2, "openDurationSeconds": 60}},
}


class Sink:
    def __init__(self) -> None:
        self.reports: list[AgentStatus] = []
        self.got = asyncio.Event()

    async def report(self, status: AgentStatus) -> None:
        self.reports.append(status)
        self.got.set()


async def test_an_opened_breaker_is_reported_at_once_with_metrics_and_patterns() -> None:
    team = AgentTeamSpec.model_validate(SPEC)
    resilience = Resilience.of(team.resilience, MemoryLearningStore())
    resilience.errors.backoff_s = 0
    bus, sink, stop = EventBus(), Sink(), asyncio.Event()
    resilience.publish_to(bus)
    tracker = ProgressTracker(
        "lead",
        None,
        sink,
        lambda: 0,
        heartbeat_s=3600,
        min_interval_s=0,
        resilience=resilience.report,
        team_patterns=True,
    )
    running = asyncio.create_task(tracker.run(bus, stop))
    await sink.got.wait()
    sink.got.clear()
    chain = ChainParts(resilience.errors, resilience.breakers).chain("lead")

    async def down() -> Any:
        raise Unavailable("model 'm' at http://10.1.2.3:8000/v1: HTTP 503 after 3 attempts")

    for _ in range(2):
        with contextlib.suppress(Unavailable):
            await chain.run(Call(CallKind.MODEL, "m", "complete"), down)
    await asyncio.wait_for(sink.got.wait(), 5)
    stop.set()
    await running
    last = sink.reports[-1]
    [breaker] = last.breakers
    assert (breaker.dependency, breaker.state, breaker.failures) == ("model:m", "open", 2)
    assert breaker.since <= dt.datetime.now(dt.UTC)
    # the first call failed, and so did its retry (which opened the breaker); the second call
    # was refused by the open breaker: a pattern of its own, not retried
    outage, refused = last.error_patterns
    assert (outage.dependency, outage.category, outage.count) == ("model:m", "transient", 1)
    assert (outage.fix, outage.success_rate) == ("retry-with-backoff", 0.0)
    assert refused.message.startswith("circuit breaker of model:m is open")
    assert refused.fix is None
    wire = last.wire()
    assert wire["breakers"][0]["state"] == "open"
    assert (
        wire["errorPatterns"][0]["message"] == "model <value> at <url> HTTP 503 after <n> attempts"
    )
    labels = {"agent": "lead", "dependency": "model:m"}
    assert REGISTRY.get_sample_value("hive_breaker_state", labels) == 2
    opened = REGISTRY.get_sample_value(
        "hive_breaker_transitions_total", {**labels, "state": "open"}
    )
    assert opened is not None
    assert opened >= 1


async def test_a_caller_error_neither_opens_the_breaker_nor_is_retried() -> None:
    resilience = Resilience.of(AgentTeamSpec.model_validate(SPEC).resilience, MemoryLearningStore())
    chain = Chain((resilience.errors, resilience.breakers), agent="dev")
    calls = 0

    async def bad() -> Any:
        nonlocal calls
        calls += 1
        raise ExternalFailure("tool 'x': HTTP 400: no such column")

    for _ in range(3):
        assert str(await chain.run(Call(CallKind.TOOL, "x", "call"), bad)).startswith("[tool x")
    assert resilience.breakers.breaker("tool:x").state is BreakerState.CLOSED


def test_the_team_counts_open_breakers_from_the_agents_entries() -> None:
    since = "2026-01-01T00:00:00Z"
    status = {
        "agents": [
            {"name": "a", "breakers": [{"dependency": "model:m", "state": "open", "since": since}]},
            {
                "name": "b",
                "breakers": [
                    {"dependency": "model:m", "state": "open", "since": since},
                    {"dependency": "tool:t", "state": "half-open", "since": since},
                ],
            },
            {"name": "c"},
        ]
    }
    assert breakers_open(status) == 2
    owner = Owner("AgentTeam", "t", "default", "uid", generation=1)
    planned = plan_team(
        owner, SPEC, status, TeamObserved(), AgentPodSettings(image="hive:test"), dt.datetime.now()
    )
    assert planned.status.breakers_open == 2


def test_the_agent_config_carries_the_teams_breaker_settings(tmp_path: Any) -> None:
    owner = Owner("AgentTeam", "t", "default", "uid", generation=1)
    planned = plan_team(
        owner, SPEC, None, TeamObserved(), AgentPodSettings(image="hive:test"), dt.datetime.now()
    )
    config_map = next(c for c in planned.children if c["kind"] == "ConfigMap")
    path = tmp_path / "agent.yaml"
    path.write_text(next(iter(config_map["data"].values())))
    loaded = PodConfig.load(path, "lead")
    breaker = loaded.spec.resilience.breaker
    assert (breaker.window_size, breaker.minimum_calls, breaker.open_duration_seconds) == (4, 2, 60)
    assert yaml.safe_load(path.read_text())["resilience"]["breaker"]["failureRateThreshold"] == 0.5
