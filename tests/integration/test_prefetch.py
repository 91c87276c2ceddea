"""Predictive prefetch against a real redis-server: the team's Markov model learns which tool
call follows which from the agents' tool-called events, starts the likely next call early when
it is cacheable, and the agent's own call is then answered from the cache; a tool with side
effects is never called unasked; another pod of the team predicts from the same Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hive.runtime.cache.keys import ToolCaching
from hive.runtime.cache.levels import MemoryLevel
from hive.runtime.cache.middleware import CallCache
from hive.runtime.cache.multilevel import MultiLevelCache
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.prefetch.markov import RedisTransitions, ToolCallShape
from hive.runtime.prefetch.prefetcher import Prefetcher
from hive.runtime.resilience.calls import Chain
from hive.runtime.tools import Tool, ToolRegistry
from tests.support import redis_server

pytestmark = pytest.mark.integration

PREFIX = "hive:prefetch:default/research:"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


class Tools:
    """search (cacheable), forecast (cacheable), book (side effects), each counting its runs."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, dict[str, Any]]] = []
        caching = ToolCaching(ttl_s=60, fingerprint="v1")

        def tool(name: str, cached: bool) -> Tool:
            async def run(**arguments: Any) -> dict[str, Any]:
                self.runs.append((name, arguments))
                return {"tool": name, **arguments}

            return Tool(name, name, {"type": "object"}, run, cache=caching if cached else None)

        self.registry = ToolRegistry.of(
            [tool("search", True), tool("forecast", True), tool("book", False)]
        )
        self.cache = CallCache(MultiLevelCache([MemoryLevel()]))
        self.registry.chain = Chain((self.cache,))

    def ran(self, name: str) -> int:
        return sum(1 for tool, _ in self.runs if tool == name)


async def call(tools: Tools, bus: EventBus, name: str, arguments: dict[str, Any]) -> None:
    """What the agent loop does: check, call through the chain, publish tool-called."""
    started = time.monotonic()
    await tools.registry.call(tools.registry.check(name, arguments), arguments)
    took = round((time.monotonic() - started) * 1000, 3)
    event = Event(EventKind.TOOL_CALLED, "scout", {"tool": name, "arguments": arguments})
    event.data["duration_ms"] = took
    await bus.publish(event)


def prefetcher(url: str, tools: Tools, bus: EventBus) -> Prefetcher:
    store = RedisTransitions(url, PREFIX)
    found = Prefetcher(store, lambda agent: tools.registry, confidence=0.6, min_samples=3)
    found.attach(bus)
    return found


async def test_the_predicted_next_call_is_started_early_and_answered_from_the_cache(
    redis_url: str,
) -> None:
    tools, bus = Tools(), EventBus()
    prefetch = prefetcher(redis_url, tools, bus)
    for day in range(3):  # learning: search -> forecast, three times
        tools.cache.cache.levels[0] = MemoryLevel()  # nothing cached from the day before
        await call(tools, bus, "search", {"q": "oslo"})
        await prefetch.settled()
        await call(tools, bus, "forecast", {"city": "oslo", "day": day})
        await prefetch.settled()
    assert prefetch.stats.started == 0  # a forecast of another day each time: no confidence
    for _ in range(3):
        tools.cache.cache.levels[0] = MemoryLevel()
        await call(tools, bus, "search", {"q": "bergen"})
        await prefetch.settled()
        await call(tools, bus, "forecast", {"city": "bergen"})
        await prefetch.settled()
    # search(bergen) -> forecast(bergen) seen 3 times now (the third time, predicted after 2
    # samples: not yet); a fresh day: the forecast starts on the search, before it is asked.
    tools.cache.cache.levels[0] = MemoryLevel()
    before = tools.ran("forecast")
    await call(tools, bus, "search", {"q": "bergen"})
    await prefetch.settled()
    assert tools.ran("forecast") == before + 1  # prefetched
    assert prefetch.stats.started == 1
    await call(tools, bus, "forecast", {"city": "bergen"})
    assert tools.ran("forecast") == before + 1  # the agent's own call hit the cache
    await prefetch.settled()
    assert prefetch.stats.hits == 1
    assert prefetch.stats.wasted == 0
    await prefetch.close()


async def test_a_tool_with_side_effects_is_never_called_unasked(redis_url: str) -> None:
    tools, bus = Tools(), EventBus()
    prefetch = prefetcher(redis_url, tools, bus)
    for _ in range(5):
        await call(tools, bus, "search", {"q": "hotel"})
        await prefetch.settled()
        await call(tools, bus, "book", {"hotel": "grand"})
        await prefetch.settled()
    assert tools.ran("book") == 5  # only the agent's own calls
    assert prefetch.stats.started > 0  # book -> search is predicted, and search is cacheable
    assert tools.ran("search") == 1  # from then on the cache answers it
    await prefetch.close()


async def test_another_pod_predicts_from_the_teams_redis(redis_url: str) -> None:
    learner_tools, learner_bus = Tools(), EventBus()
    learner = prefetcher(redis_url, learner_tools, learner_bus)
    for _ in range(4):
        await call(learner_tools, learner_bus, "search", {"q": "rain"})
        await learner.settled()
        await call(learner_tools, learner_bus, "forecast", {"city": "bergen"})
        await learner.settled()
    await learner.close()
    store = RedisTransitions(redis_url, PREFIX)
    prediction = await store.predict(ToolCallShape("search", {"q": "rain"}))
    await store.close()
    assert prediction is not None
    assert prediction.call == ToolCallShape("forecast", {"city": "bergen"})
    assert prediction.samples == 4
    assert prediction.confidence == 1.0
    tools, bus = Tools(), EventBus()  # a new pod, nothing learnt in its memory
    other = prefetcher(redis_url, tools, bus)
    await call(tools, bus, "search", {"q": "rain"})
    await other.settled()
    assert tools.ran("forecast") == 1
    assert other.stats.started == 1
    await other.close()
