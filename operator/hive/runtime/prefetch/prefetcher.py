"""Starts an agent's likely next tool call before it asks: on each tool call the agent made (its
``tool-called`` event), the team's Markov model learns the step from its previous call and
predicts the next; a prediction seen at least `min_samples` times with at least `confidence`
is called at once through the agent's own registry (so its chain, and its cache, which keeps
the result), where the tool is declared cacheable (its ToolVersion's cache, hence side-effect
free). When the agent then makes that call, the cache answers it (or, still running, the
cache's single flight joins it). Prefetches the agent's next call did not use are wasted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from hive.errors import InvalidInput
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.prefetch.markov import ToolCallShape, TransitionStore
from hive.runtime.tools import ToolRegistry

log = logging.getLogger(__name__)

PREFETCHES = Counter(
    "hive_prefetch_total",
    "Tool calls an agent started before it asked (started), and whether its next call was the "
    "predicted one (hit) or not (wasted).",
    ["outcome"],
)


@dataclass
class PrefetchStats:
    started: int = 0
    hits: int = 0
    wasted: int = 0
    saved_s: float = 0.0  # the prefetched calls' own time less what the agent then waited

    def as_dict(self) -> dict[str, Any]:
        used = self.hits + self.wasted
        return {
            "started": self.started,
            "hits": self.hits,
            "wasted": self.wasted,
            "hitRate": round(self.hits / used, 4) if used else 0.0,
            "savedSeconds": round(self.saved_s, 4),
        }


@dataclass
class _Outstanding:
    call: ToolCallShape
    took_s: float | None = None  # None while it runs


class Prefetcher:
    def __init__(
        self,
        store: TransitionStore,
        registry_of: Callable[[str], ToolRegistry | None],
        *,
        confidence: float,
        min_samples: int,
    ) -> None:
        self.store = store
        self.registry_of = registry_of
        self.confidence = confidence
        self.min_samples = min_samples
        self.stats = PrefetchStats()
        self._last: dict[str, ToolCallShape] = {}
        self._outstanding: dict[str, _Outstanding] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._learning: dict[str, asyncio.Task[None]] = {}

    def attach(self, bus: EventBus) -> None:
        bus.subscribe(self.on_event)

    def on_event(self, event: Event) -> None:
        if event.kind is not EventKind.TOOL_CALLED or "tool" not in event.data:
            return
        agent = event.agent
        current = ToolCallShape(str(event.data["tool"]), dict(event.data.get("arguments") or {}))
        self._settle(agent, current, float(event.data.get("duration_ms") or 0) / 1000)
        previous = self._last.get(agent)
        self._last[agent] = current
        before = self._learning.get(agent)  # one agent's steps learnt in order
        self._learning[agent] = self._spawn(self._learn(agent, previous, current, before))

    def _settle(self, agent: str, current: ToolCallShape, waited_s: float) -> None:
        outstanding = self._outstanding.pop(agent, None)
        if outstanding is None:
            return
        if outstanding.call.signature == current.signature:
            self.stats.hits += 1
            PREFETCHES.labels("hit").inc()
            if outstanding.took_s is not None:
                self.stats.saved_s += max(0.0, outstanding.took_s - waited_s)
        else:
            self.stats.wasted += 1
            PREFETCHES.labels("wasted").inc()

    async def _learn(
        self,
        agent: str,
        previous: ToolCallShape | None,
        current: ToolCallShape,
        before: asyncio.Task[None] | None,
    ) -> None:
        if before is not None:
            await asyncio.gather(before, return_exceptions=True)
        try:
            if previous is not None:
                await self.store.observe(previous, current)
            prediction = await self.store.predict(current)
        except Exception as exc:  # the team's Redis away: no prefetch, the agent goes on
            log.warning("prefetch: learning failed: %s", exc)
            return
        if prediction is None or prediction.samples < self.min_samples:
            return
        if prediction.confidence < self.confidence or agent in self._outstanding:
            return
        registry = self.registry_of(agent)
        if registry is None:
            return
        try:
            tool = registry.check(prediction.call.tool, prediction.call.arguments)
        except InvalidInput:
            return  # not a tool of this agent now, or the arguments no longer fit
        if tool.cache is None:
            return  # not declared cacheable (and side-effect free): never called unasked
        outstanding = self._outstanding[agent] = _Outstanding(prediction.call)
        self.stats.started += 1
        PREFETCHES.labels("started").inc()
        started = time.perf_counter()
        try:
            await registry.call(tool, prediction.call.arguments)
        except Exception as exc:
            log.info("prefetch of %s failed: %s", prediction.call.tool, exc)
        outstanding.took_s = time.perf_counter() - started

    def _spawn(self, work: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def settled(self) -> None:
        """Wait for the learning and prefetches started so far."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self.stats.wasted += len(self._outstanding)  # never used
        self._outstanding.clear()
        await self.store.close()
