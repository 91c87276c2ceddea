"""Graceful degradation: capability levels from observations, the fallback chain of a model call
(fallback models, cached and partial answers), tool alternatives, and the team's Degraded
condition computed from the agents' entries."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from hive.api.agentteam import AgentTeamSpec, CapabilityLevel, DegradationSpec
from hive.errors import Unavailable
from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, agent_names, plan_team
from hive.reconcile.capability import capability_degraded, capability_settled
from hive.reconcile.meta import Owner
from hive.runtime.events import EventBus, EventKind
from hive.runtime.models import OpenAICompatible
from hive.runtime.pod import PodConfig
from hive.runtime.resilience.breaker import Breakers, BreakerSettings
from hive.runtime.resilience.chain import ChainParts
from hive.runtime.resilience.degradation import Degradation
from hive.runtime.resilience.learning import (
    ErrorRecorder,
    Learner,
    MemoryLearningStore,
    Strategy,
)
from hive.runtime.resilience.levels import Observation, choose, model_order
from hive.runtime.resilience.report import ResilienceReport
from hive.runtime.tools import Tool, ToolRegistry

P, F1, F2 = "model:primary", "model:small", "model:tiny"


def test_levels_follow_what_the_agent_observes() -> None:
    spec = DegradationSpec(
        latency_p99_ms=1000, min_tokens_left=100, max_cpu_percent=80, max_memory_percent=90
    )
    models = (P, F1)
    assert choose(Observation(models=models), spec) == (CapabilityLevel.FULL, "")
    level, why = choose(Observation(models=models, open_breakers=[P]), spec)
    assert level is CapabilityLevel.REDUCED
    assert "model:primary open" in why
    level, why = choose(Observation(models=models, open_breakers=["tool:search"]), spec)
    assert level is CapabilityLevel.REDUCED
    assert "tool:search" in why
    level, why = choose(Observation(models=models, open_breakers=[P, F1]), spec)
    assert level is CapabilityLevel.MINIMAL
    assert "every model" in why
    level, why = choose(Observation(models=models, latency_p99_ms={P: 2500.0}), spec)
    assert level is CapabilityLevel.REDUCED
    assert "p99 2500ms > 1000ms" in why
    assert choose(Observation(models=models, latency_p99_ms={P: 900.0}), spec)[0] == "full"
    level, why = choose(Observation(models=models, tokens_left=50), spec)
    assert level is CapabilityLevel.REDUCED
    assert "50 tokens left < 100" in why
    assert choose(Observation(models=models, cpu_percent=95.0), spec)[1] == "CPU 95% > 80%"
    assert choose(Observation(models=models, memory_percent=95.0), spec)[1] == "memory 95% > 90%"
    # thresholds left unset are not considered
    free = DegradationSpec()
    assert choose(Observation(models=models, cpu_percent=99.0, tokens_left=1), free)[0] == "full"


def test_the_fallback_order_per_level() -> None:
    models = [P, F1, F2]
    none: set[str] = set()
    assert model_order(models, CapabilityLevel.FULL, open_breakers=none, due=none, slow=none) == [
        P,
        F1,
        F2,
    ]
    reduced = CapabilityLevel.REDUCED
    assert model_order(models, reduced, open_breakers={P}, due=none, slow=none) == [F1, F2, P]
    # a model whose breaker may probe now goes first, so a recovery is noticed
    assert model_order(models, reduced, open_breakers={P}, due={P}, slow=none) == [P, F1, F2]
    assert model_order(models, reduced, open_breakers={F1}, due=none, slow={P}) == [F2, P, F1]


def client(name: str, handler: Any, chain: Any = None) -> OpenAICompatible:
    model = OpenAICompatible(
        "http://m/v1", name, max_retries=0, transport=httpx.MockTransport(handler)
    )
    return model if chain is None else OpenAICompatible(**{**model.__dict__, "chain": chain})


def answering(text: str, calls: list[str]) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(text)
        message = {"role": "assistant", "content": text}
        body = {"choices": [{"message": message, "finish_reason": "stop"}], "usage": {}}
        return httpx.Response(200, json=body)

    return handle


def failing(calls: list[str]) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append("503")
        return httpx.Response(503, json={"error": "down"})

    return handle


class Switch:
    """A model server that fails until told otherwise."""

    def __init__(self, text: str) -> None:
        self.up = False
        self.calls: list[str] = []
        self.text = text

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append("ok" if self.up else "503")
        return answering(self.text, [])(request) if self.up else failing([])(request)


def wired(
    primary: Any,
    fallbacks: dict[str, Any],
    spec: DegradationSpec | None = None,
    clock: list[float] | None = None,
) -> tuple[OpenAICompatible, Degradation, EventBus, MemoryLearningStore]:
    clock = clock if clock is not None else [0.0]
    breakers = Breakers(
        BreakerSettings(window_size=2, minimum_calls=2, open_duration_s=5), clock=lambda: clock[0]
    )
    store = MemoryLearningStore()
    errors = ErrorRecorder(Learner(store), attempts=0)
    parts = ChainParts(errors=errors, breakers=breakers)
    inner = parts.chain("a")
    bus = EventBus()
    report = ResilienceReport(bus)
    degradation = Degradation(
        spec or DegradationSpec(),
        "primary",
        [client(name, handler, inner) for name, handler in fallbacks.items()],
        agent="a",
        breakers=breakers,
        learner=errors.learner,
        bus=bus,
        listeners=[report.on_capability],
        clock=lambda: clock[0],
    )
    parts.degradation = degradation
    model = client("primary", primary, parts.chain("a")).for_agent("a")
    return model, degradation, bus, store


async def test_the_fallback_answers_and_the_level_comes_back_when_the_primary_recovers() -> None:
    primary = Switch("from primary")
    small: list[str] = []
    clock = [0.0]
    model, degradation, bus, store = wired(
        primary, {"small": answering("from small", small)}, clock=clock
    )
    ask = [{"role": "user", "content": "hello"}]
    assert (await model.complete(ask)).content == "from small"
    assert (await model.complete(ask)).content == "from small"
    assert degradation.breakers is not None
    assert degradation.breakers.breakers[P].state == "open"
    assert degradation.level is CapabilityLevel.REDUCED
    assert "model:primary" in degradation.status.reason
    # reduced: the fallback first, the open primary not asked
    asked_before = len(primary.calls)
    assert (await model.complete(ask)).content == "from small"
    assert len(primary.calls) == asked_before
    # falling back cured the primary's failures, and the learner was told
    pattern = next(iter(store.found.values()))
    assert pattern.outcomes[Strategy.FALLBACK_MODEL.value][0] >= 1
    # the primary recovers; once its breaker may probe, it is asked first and closes
    primary.up = True
    clock[0] += 6
    assert (await model.complete(ask)).content == "from primary"
    assert degradation.level is CapabilityLevel.FULL
    kinds = [e.kind for e in bus.history]
    assert EventKind.DEGRADED_ANSWER in kinds
    levels = [e.data["level"] for e in bus.history if e.kind is EventKind.CAPABILITY_CHANGED]
    assert levels == ["reduced", "full"]


async def test_cached_then_partial_answers_when_no_model_answers() -> None:
    primary = Switch("first")
    primary.up = True
    both = DegradationSpec(cached_answers=True, partial_answers=True)
    model, _degradation, bus, _ = wired(primary, {"small": failing([])}, both)
    ask = [{"role": "user", "content": "what is 2+2?"}]
    assert (await model.complete(ask)).content == "first"
    primary.up = False
    reply = await model.complete(ask)
    assert reply.content == "first"  # the last good answer to the same prompt
    other = await model.complete([{"role": "user", "content": "something new"}])
    assert other.finish_reason == "degraded"
    assert other.content is not None
    assert other.content.startswith("[degraded answer")
    assert "something new" in other.content
    hows = [e.data["how"] for e in bus.history if e.kind is EventKind.DEGRADED_ANSWER]
    assert hows == ["cached-answer", "partial-answer"]


async def test_without_cached_or_partial_answers_the_failure_stands() -> None:
    off = DegradationSpec()
    model, _, _, _ = wired(failing([]), {}, off)
    with pytest.raises(Unavailable):
        await model.complete([{"role": "user", "content": "hi"}])


async def test_reduced_answers_are_shortened() -> None:
    seen: list[Any] = []

    def primary(request: httpx.Request) -> httpx.Response:
        seen.append(request.read())
        return answering("ok", [])(request)

    spec = DegradationSpec(reduced_max_tokens=64, min_tokens_left=1000)
    model, degradation, _, _ = wired(primary, {}, spec)
    degradation.max_tokens = 500  # a budget below minTokensLeft: reduced
    await model.complete([{"role": "user", "content": "hi"}], max_tokens=4000)
    assert degradation.level is CapabilityLevel.REDUCED
    assert b'"max_tokens":64' in seen[-1].replace(b" ", b"")


async def test_a_failing_tool_goes_to_its_alternative_then_is_skipped_with_a_note() -> None:
    calls: list[str] = []

    def tool(name: str, works: bool) -> Tool:
        async def run(q: str) -> str:
            calls.append(name)
            if not works:
                raise Unavailable(f"{name} is down")
            return f"{name}: {q}"

        schema = {"type": "object", "properties": {"q": {"type": "string"}}}
        return Tool(name, name, schema, run)

    errors = ErrorRecorder(Learner(MemoryLearningStore()), attempts=0)
    registry = ToolRegistry.of([tool("search", False), tool("mirror", True), tool("old", False)])
    registry.chain = ChainParts(errors=errors).chain("a")
    registry.alternatives = {"search": ["mirror"], "old": ["search"]}
    assert await registry.call(registry.tools["search"], {"q": "x"}) == "mirror: x"
    assert calls == ["search", "mirror"]
    note = await registry.call(registry.tools["old"], {"q": "x"})
    assert note.startswith("[tool search was skipped")


def test_fallbacks_and_alternatives_are_checked_at_admission() -> None:
    base: dict[str, Any] = {"goal": "g", "agents": [{"name": "a", "role": "senior"}]}
    dup = {"name": "m", "fallbacks": [{"endpoint": "http://x/v1", "name": "m"}]}
    with pytest.raises(ValidationError, match=r"fallbacks\[0\]\.name: 'm' is already a model"):
        AgentTeamSpec.model_validate({**base, "model": dup})
    tools = [{"name": "search", "alternatives": ["web"]}]
    agents = [{"name": "a", "role": "senior", "tools": tools}]
    with pytest.raises(ValidationError, match=r"tools\[0\]\.alternatives: 'web' is not another"):
        AgentTeamSpec.model_validate({**base, "model": {"name": "m"}, "agents": agents})


SPEC: dict[str, Any] = {
    "goal": "answer",
    "model": {
        "name": "m",
        "endpoint": "http://vllm:8000/v1",
        "fallbacks": [
            {
                "name": "s",
                "endpoint": "http://small:9000/v1",
                "secretRef": {"name": "k", "key": "v"},
            }
        ],
    },
    "agents": [{"name": "lead", "role": "senior"}, {"name": "dev", "role": "junior"}],
}


def planned(status: dict[str, Any] | None) -> Any:
    owner = Owner("AgentTeam", "t", "default", "uid", generation=2)
    deployments = {
        agent_names("t", a)["workload"]: {
            "metadata": {"name": agent_names("t", a)["workload"], "generation": 1},
            "status": {"observedGeneration": 1, "availableReplicas": 1, "updatedReplicas": 1},
        }
        for a in ("lead", "dev")
    }
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return plan_team(
        owner, SPEC, status, TeamObserved(deployments=deployments), AgentPodSettings("hive"), now
    )


def test_the_team_is_degraded_while_an_agent_is_below_full_and_recovers_by_itself() -> None:
    since = "2026-01-01T00:00:00Z"
    entries = [
        {"name": "lead", "capability": {"level": "full", "reason": "", "since": since}},
        {
            "name": "dev",
            "capability": {
                "level": "reduced",
                "reason": "circuit breaker of model:m open",
                "since": since,
            },
        },
    ]
    degraded = next(
        c for c in planned({"agents": entries}).status.conditions if c.type == "Degraded"
    )
    assert degraded.status == "True"
    assert degraded.reason == "CapabilityReduced"
    assert "dev at reduced capability since 2026-01-01" in degraded.message
    assert "model:m open" in degraded.message
    assert capability_degraded({"agents": [{"name": "x", "capability": {"level": "minimal"}}]})
    entries[1]["capability"] = {"level": "full", "reason": "", "since": since}
    healed = next(c for c in planned({"agents": entries}).status.conditions if c.type == "Degraded")
    assert healed.status == "False"


def test_fallback_secrets_and_ports_reach_the_agent_pods() -> None:
    children = planned(None).children
    deployment = next(c for c in children if c["kind"] == "Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    fallback = next(e for e in env if e["name"] == "HIVE_FALLBACK_MODEL_API_KEYS__0")
    assert fallback["valueFrom"]["secretKeyRef"] == {"name": "k", "key": "v"}
    policy = next(c for c in children if c["kind"] == "NetworkPolicy")
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
    assert {8000, 9000} <= ports


def test_an_agents_level_change_wakes_the_teams_reconcile_until_degraded_says_it() -> None:
    since = "2026-01-01T00:00:00Z"
    reduced = {"level": "reduced", "reason": "circuit breaker of model:m open", "since": since}
    entries: list[dict[str, Any]] = [{"name": "dev", "capability": reduced}]
    healthy = [
        {
            "type": "Degraded",
            "status": "False",
            "reason": "AsExpected",
            "message": "no problem found",
            "lastTransitionTime": since,
            "observedGeneration": 2,
        }
    ]
    assert not capability_settled({"agents": entries, "conditions": healthy})
    status = planned({"agents": entries, "conditions": healthy}).status.wire()
    assert capability_settled({**status, "agents": entries})
    entries[0]["capability"] = {"level": "full", "reason": "", "since": since}
    assert not capability_settled({**status, "agents": entries})
    assert capability_settled({"agents": entries, "conditions": healthy})


async def test_minimal_when_every_model_is_refused_answers_from_the_cache() -> None:
    primary, small = Switch("first"), Switch("small")
    primary.up = True
    both = DegradationSpec(cached_answers=True)
    model, degradation, _, _ = wired(primary, {"small": small}, both)
    ask = [{"role": "user", "content": "q"}]
    assert (await model.complete(ask)).content == "first"
    primary.up = False
    for _ in range(3):
        assert (await model.complete(ask)).content == "first"
    assert degradation.level is CapabilityLevel.MINIMAL
    asked = len(primary.calls) + len(small.calls)
    assert (await model.complete(ask)).content == "first"
    assert len(primary.calls) + len(small.calls) == asked  # open breakers refuse at once


def test_the_agent_config_carries_fallbacks_and_degradation(tmp_path: Any) -> None:
    spec = {**SPEC, "resilience": {"degradation": {"latencyP99Ms": 900, "cachedAnswers": True}}}
    owner = Owner("AgentTeam", "t", "default", "uid", generation=1)
    plan = plan_team(owner, spec, None, TeamObserved(), AgentPodSettings("hive"), dt.datetime.now())
    config_map = next(c for c in plan.children if c["kind"] == "ConfigMap")
    path = tmp_path / "agent.yaml"
    path.write_text(config_map["data"]["agent.yaml"])
    loaded = PodConfig.load(path, "lead").spec
    assert [f.name for f in loaded.model.fallbacks] == ["s"]
    assert loaded.resilience.degradation.latency_p99_ms == 900
    assert loaded.resilience.degradation.cached_answers is True


def test_hive_run_shows_the_capability_level() -> None:
    from hive.api.agentteam import AgentTeamSpec as Spec
    from hive.cli.live import LiveView
    from hive.cli.runteam import local_chain
    from hive.runtime.events import Event

    keyless = {"name": "s", "endpoint": "http://small:9000/v1"}
    spec = Spec.model_validate({**SPEC, "model": {**SPEC["model"], "fallbacks": [keyless]}})
    chain, resilience = local_chain(spec, None, EventBus())
    assert resilience is not None
    assert resilience.degradation is not None
    assert chain.middlewares[0] is resilience.degradation
    view = LiveView(spec, "task")
    data = {"level": "reduced", "from": "full", "reason": "circuit breaker of model:m open"}
    view.on_event(Event(EventKind.CAPABILITY_CHANGED, "team", data))
    assert view.capability.startswith("reduced since")
    assert "works at reduced capability (was full)" in view.log[-1]
