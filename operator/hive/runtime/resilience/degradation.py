"""Graceful degradation: fallback chains and the capability level of one agent.

A model call goes down a chain until something answers: the team's model, its fallback models
in order (each through the same middlewares, so each has its own circuit breaker, error
patterns and faults), the last good answer to the same prompt (a hash of the messages, tools
and options; kept in this process's memory, bounded, lost on restart), and last a partial
answer marked as degraded (``finish_reason`` ``"degraded"``, the text says so). A tool call
goes to its alternative tools in order, then is skipped with a note (see
:meth:`hive.runtime.tools.ToolRegistry.call`).

The agent's capability level (see :mod:`hive.runtime.resilience.levels`) is assessed before
and after every model call and every couple of seconds by :meth:`Degradation.watch`; at a
reduced level the fallbacks are asked first and answers are shortened, at minimal nothing but
breaker probes reaches a model. Whether falling back cured a failure of the team's model is
told to the error learner (strategy ``fallback-model``), so the team's error patterns show how
often it worked. Each change of level is told to listeners (the agent's report: its status
entry, an event, the ``hive_capability_level`` gauge); each answer that did not come from the
team's model is a ``degraded-answer`` event.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hive.api.agentteam import BreakerState, CapabilityLevel, CapabilityStatus, DegradationSpec
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.models import OpenAICompatible, Reply
from hive.runtime.resilience.breaker import Breakers
from hive.runtime.resilience.calls import Call, CallKind, Proceed
from hive.runtime.resilience.learning import Learner, Strategy
from hive.runtime.resilience.levels import Observation, choose, model_order, slow_models
from hive.runtime.resilience.patterns import Failure, fingerprint
from hive.runtime.resilience.usage import ProcessUsage

CACHE_SIZE = 256
LATENCY_WINDOW_S = 60.0
LATENCY_SAMPLES = 200
WATCH_INTERVAL_S = 2.0
PARTIAL = (
    "[degraded answer: no model could answer ({why}); this is a partial answer from what the "
    "request said] {gist}"
)

CapabilityListener = Callable[[str, CapabilityStatus], Any]


def prompt_key(request: dict[str, Any]) -> str:
    """The hash of what was asked: messages, tools and options (the answer length aside)."""
    options = {k: v for k, v in (request.get("options") or {}).items() if k != "max_tokens"}
    asked = {"messages": request.get("messages"), "tools": request.get("tools"), "o": options}
    text = json.dumps(asked, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class AnswerCache:
    """The last good answer per prompt hash, the least recently used dropped beyond `size`."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.answers: OrderedDict[str, Reply] = OrderedDict()

    def put(self, key: str, reply: Reply) -> None:
        self.answers[key] = reply
        self.answers.move_to_end(key)
        while len(self.answers) > self.size:
            self.answers.popitem(last=False)

    def get(self, key: str) -> Reply | None:
        reply = self.answers.get(key)
        if reply is not None:
            self.answers.move_to_end(key)
        return reply


class Latencies:
    """Model-call latencies per model over the last minute, for their p99."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.samples: dict[str, deque[tuple[float, float]]] = {}
        self._p99: dict[str, float] | None = None  # until a sample comes or one expires

    def add(self, key: str, ms: float) -> None:
        self.samples.setdefault(key, deque(maxlen=LATENCY_SAMPLES)).append((self.clock(), ms))
        self._p99 = None

    def p99(self) -> dict[str, float]:
        since = self.clock() - LATENCY_WINDOW_S
        for samples in self.samples.values():
            while samples and samples[0][0] < since:
                samples.popleft()
                self._p99 = None
        if self._p99 is None:
            self._p99 = {}
            for key, samples in self.samples.items():
                if samples:
                    ordered = sorted(ms for _, ms in samples)
                    self._p99[key] = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        return self._p99


def partial_answer(request: dict[str, Any], why: str) -> Reply:
    """An answer that says it is degraded, with the gist of the last thing asked."""
    messages = request.get("messages") or [{}]
    gist = " ".join(str(messages[-1].get("content") or "").split())[:300]
    return Reply(PARTIAL.format(why=why[:300], gist=gist), [], "degraded")


@dataclass
class Attempt:
    """One model asked: its key, and how to ask it."""

    key: str
    run: Proceed[Reply]


class Degradation:
    """The outermost middleware of an agent's chain, for the calls to the team's model."""

    def __init__(
        self,
        spec: DegradationSpec,
        model: str,
        fallbacks: Sequence[OpenAICompatible] = (),
        *,
        agent: str = "",
        breakers: Breakers | None = None,
        learner: Learner | None = None,
        max_tokens: int | None = None,
        usage: ProcessUsage | None = None,
        bus: EventBus | None = None,
        listeners: list[CapabilityListener] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.model = model
        self.fallbacks = {f"{CallKind.MODEL.value}:{f.model}": f for f in fallbacks}
        self.agent = agent
        self.breakers = breakers
        self.learner = learner
        self.max_tokens = max_tokens  # the team's budget.maxTokens
        self.usage = usage
        self.bus = bus
        self.listeners = list(listeners or [])
        self.clock = clock
        self.cache = AnswerCache()
        self.latencies = Latencies(clock)
        self.tokens_used = 0
        self.status = CapabilityStatus(level=CapabilityLevel.FULL, reason="", since=_now())
        self._per_agent: dict[tuple[str, str], OpenAICompatible] = {}
        self.seen = Observation()  # what the last assessment saw
        self._cpu: float | None = None
        self._memory: float | None = None

    @property
    def level(self) -> CapabilityLevel:
        return CapabilityLevel(self.status.level)

    @property
    def primary(self) -> str:
        return f"{CallKind.MODEL.value}:{self.model}"

    @property
    def models(self) -> list[str]:
        return [self.primary, *self.fallbacks]

    # -- what the agent observes --------------------------------------------------------------

    def open_breakers(self) -> list[str]:
        if self.breakers is None:
            return []
        return sorted(
            key for key, b in self.breakers.breakers.items() if b.state is not BreakerState.CLOSED
        )

    def due(self) -> set[str]:
        """Models whose open breaker would let a probe through now."""
        if self.breakers is None:
            return set()
        now = self.clock()
        out = set()
        for key in self.models:
            breaker = self.breakers.breakers.get(key)
            if breaker is None or breaker.state is BreakerState.CLOSED:
                continue
            reopens = breaker.since + breaker.settings.open_duration_s
            if breaker.state is BreakerState.HALF_OPEN or now >= reopens:
                out.add(key)
        return out

    def sample_process(self) -> None:
        if self.usage is None:
            return
        if self.spec.max_cpu_percent is not None:
            self._cpu = self.usage.cpu_percent()
        if self.spec.max_memory_percent is not None:
            self._memory = self.usage.memory_percent()

    def observe(self) -> Observation:
        tokens_left = None if self.max_tokens is None else self.max_tokens - self.tokens_used
        return Observation(
            models=self.models,
            open_breakers=self.open_breakers(),
            latency_p99_ms=self.latencies.p99() if self.spec.latency_p99_ms is not None else {},
            tokens_left=tokens_left,
            cpu_percent=self._cpu,
            memory_percent=self._memory,
        )

    async def assess(self) -> CapabilityStatus:
        """Choose the level from what is observed now; tell the listeners when it changed."""
        self.seen = self.observe()
        level, reason = choose(self.seen, self.spec)
        previous = self.level
        if level is previous and reason == self.status.reason:
            return self.status
        changed = level is not previous
        since = _now() if changed else self.status.since
        self.status = CapabilityStatus(level=level, reason=reason, since=since)
        for listener in self.listeners:
            result = listener(self.agent, self.status)
            if asyncio.iscoroutine(result):
                await result
        if changed and self.bus is not None:
            data = {"level": level.value, "from": previous.value, "reason": reason}
            await self.bus.publish(Event(EventKind.CAPABILITY_CHANGED, self.agent, data))
        return self.status

    async def watch(self, stop: asyncio.Event) -> None:
        """Assess every couple of seconds, so the level comes back up without a call."""
        while not stop.is_set():
            self.sample_process()
            await self.assess()
            try:
                await asyncio.wait_for(stop.wait(), WATCH_INTERVAL_S)
            except TimeoutError:
                continue

    # -- the middleware -----------------------------------------------------------------------

    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any:
        if call.kind is not CallKind.MODEL or call.dependency != self.model or not call.request:
            return await proceed()
        request = call.request
        await self.assess()
        if self.level is not CapabilityLevel.FULL and self.spec.reduced_max_tokens:
            options = request.setdefault("options", {})
            asked = options.get("max_tokens") or self.spec.reduced_max_tokens
            options["max_tokens"] = min(asked, self.spec.reduced_max_tokens)
        key = prompt_key(request) if self.spec.cached_answers else ""
        seen = self.seen
        order = model_order(
            self.models,
            self.level,
            open_breakers=set(seen.open_breakers),
            due=self.due(),
            slow=slow_models(seen, self.spec),
        )
        failures: list[tuple[str, Exception]] = []
        primary_failure: Failure | None = None
        asked = list(request["messages"])  # recoveries of one model must not reword the next's
        for model in order:
            request["messages"] = list(asked)
            started = self.clock()
            try:
                reply: Reply = await self._ask(model, call, proceed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures.append((model, exc))
                if model == self.primary:
                    primary_failure = fingerprint(call, exc)
                continue
            if self.spec.latency_p99_ms is not None:
                self.latencies.add(model, 1000 * (self.clock() - started))
            self.tokens_used += reply.prompt_tokens + reply.completion_tokens
            if key:
                self.cache.put(key, reply)
            if model != self.primary:
                await self._learned(primary_failure, ok=True)
                await self._degraded(call, "fallback-model", model, failures)
            await self.assess()
            return reply
        await self._learned(primary_failure, ok=False)
        await self.assess()
        why = "; ".join(f"{m}: {str(e)[:120]}" for m, e in failures) or "no model"
        cached = self.cache.get(key) if key else None
        if cached is not None:
            await self._degraded(call, "cached-answer", "", failures)
            return cached
        if self.spec.partial_answers:
            await self._degraded(call, "partial-answer", "", failures)
            return partial_answer(request, why)
        raise failures[0][1]

    async def _ask(self, model: str, call: Call, proceed: Proceed[Any]) -> Reply:
        if model == self.primary:
            reply: Reply = await proceed()
            return reply
        fallback = self._fallback(model, call.agent)
        assert call.request is not None
        request = call.request
        return await fallback.complete(
            request["messages"], request.get("tools"), **(request.get("options") or {})
        )

    def _fallback(self, model: str, agent: str) -> OpenAICompatible:
        """The fallback client for `agent` (requests name it as their user, like the team's)."""
        found = self._per_agent.get((model, agent))
        if found is None:
            base = self.fallbacks[model]
            found = base.for_agent(agent) if agent else base
            self._per_agent[(model, agent)] = found
        return found

    async def _learned(self, failure: Failure | None, *, ok: bool) -> None:
        if self.learner is not None and failure is not None and self.fallbacks:
            await self.learner.reward(failure, Strategy.FALLBACK_MODEL, ok)

    async def _degraded(
        self, call: Call, how: str, model: str, failures: list[tuple[str, Exception]]
    ) -> None:
        if self.bus is None:
            return
        data = {
            "how": how,
            "model": model,
            "level": self.level.value,
            "failed": [f"{m}: {str(e)[:200]}" for m, e in failures],
        }
        await self.bus.publish(Event(EventKind.DEGRADED_ANSWER, call.agent or self.agent, data))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)
