"""Learned recovery: which strategy cures which error pattern, chosen by Thompson sampling.

For every failure the learner draws, for each strategy that fits the call, a success rate from
Beta(1 + successes, 1 + failures) of that strategy on that pattern and tries the strategies in
the order of their draws: a strategy that keeps working is soon chosen first, one that never
worked is still tried now and then. Counts are shared by the team's pods and kept across
restarts in a :class:`LearningStore` (Redis: one hash per team; in memory when there is none).

The strategies the chain can apply itself are applied by :class:`ErrorRecorder` (the ``errors``
middleware): retry with backoff, shrink the context (drop the oldest non-system messages of a
model call), ask the model to repair its output, and, for a tool whose recoveries all failed,
skip it with a note as its result. Switching to a fallback model and escalating to the senior
are graceful degradation's to apply: it asks :meth:`Learner.rank` with those strategies and
reports back through :meth:`Learner.reward`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from hive.errors import InvalidInput
from hive.runtime.resilience.breaker import BreakerOpen
from hive.runtime.resilience.calls import Call, CallKind, Proceed
from hive.runtime.resilience.patterns import Category, ErrorPattern, Failure, fingerprint

log = logging.getLogger(__name__)


class Strategy(StrEnum):
    RETRY = "retry-with-backoff"
    FALLBACK_MODEL = "fallback-model"
    SHRINK_CONTEXT = "shrink-context"
    REPAIR_OUTPUT = "repair-output"
    SKIP_TOOL = "skip-tool"
    ESCALATE = "escalate"


IN_CHAIN = (Strategy.RETRY, Strategy.SHRINK_CONTEXT, Strategy.REPAIR_OUTPUT)
"""What the errors middleware learns and applies itself (skip-tool is its last resort)."""

REPAIR_PROMPT = (
    "Your previous answer could not be used ({problem}). Answer again, exactly in the form "
    "that was asked for."
)


def fitting(call: Call, failure: Failure) -> list[Strategy]:
    """The in-chain strategies that can help this call with this kind of failure."""
    if failure.category is Category.AUTH:
        return []
    if failure.category in (Category.TRANSIENT, Category.RATE_LIMIT):
        return [Strategy.RETRY]
    if call.kind is CallKind.MODEL and call.request is not None:
        return [Strategy.RETRY, Strategy.SHRINK_CONTEXT, Strategy.REPAIR_OUTPUT]
    return [Strategy.RETRY]


class LearningStore(Protocol):
    """Where patterns and the outcomes of recoveries are kept for the whole team."""

    async def seen(self, failure: Failure, at: dt.datetime) -> None: ...

    async def outcomes(self, fingerprint: str) -> dict[str, tuple[int, int]]: ...

    async def reward(self, fingerprint: str, strategy: str, ok: bool) -> None: ...

    async def patterns(self) -> list[ErrorPattern]: ...


@dataclass
class MemoryLearningStore:
    """The store of one process (tests, and agents told of no Redis)."""

    found: dict[str, ErrorPattern] = field(default_factory=dict)

    async def seen(self, failure: Failure, at: dt.datetime) -> None:
        pattern = self.found.get(failure.fingerprint)
        if pattern is None:
            pattern = self.found[failure.fingerprint] = ErrorPattern(failure, 0, at, at)
        pattern.count += 1
        pattern.last_seen = at

    async def outcomes(self, fingerprint: str) -> dict[str, tuple[int, int]]:
        pattern = self.found.get(fingerprint)
        return dict(pattern.outcomes) if pattern else {}

    async def reward(self, fingerprint: str, strategy: str, ok: bool) -> None:
        pattern = self.found.get(fingerprint)
        if pattern is not None:
            good, bad = pattern.outcomes.get(strategy, (0, 0))
            pattern.outcomes[strategy] = (good + ok, bad + (not ok))

    async def patterns(self) -> list[ErrorPattern]:
        return list(self.found.values())


def top_patterns(patterns: Sequence[ErrorPattern], n: int = 5) -> list[ErrorPattern]:
    return sorted(patterns, key=lambda p: (-p.count, p.first_seen))[:n]


class Learner:
    """Ranks strategies per pattern by Thompson sampling over the store's counts."""

    def __init__(self, store: LearningStore, rng: random.Random | None = None) -> None:
        self.store = store
        self.rng = rng or random.Random()  # noqa: S311 - sampling, not secrets

    async def seen(self, failure: Failure) -> None:
        try:
            await self.store.seen(failure, dt.datetime.now(dt.UTC))
        except Exception as exc:  # the store is help, not a reason to fail a call
            log.warning("error pattern not stored: %s", exc)

    async def rank(self, failure: Failure, strategies: Sequence[Strategy]) -> list[Strategy]:
        """The strategies, most promising first (one Thompson draw each)."""
        try:
            counts = await self.store.outcomes(failure.fingerprint)
        except Exception as exc:
            log.warning("learned recoveries not read: %s", exc)
            counts = {}
        draws = {}
        for strategy in strategies:
            ok, bad = counts.get(strategy.value, (0, 0))
            draws[strategy] = self.rng.betavariate(1 + ok, 1 + bad)
        return sorted(strategies, key=lambda s: -draws[s])

    async def reward(self, failure: Failure, strategy: Strategy, ok: bool) -> None:
        try:
            await self.store.reward(failure.fingerprint, strategy.value, ok)
        except Exception as exc:
            log.warning("recovery outcome not stored: %s", exc)


@dataclass(frozen=True)
class Recovery:
    """One strategy tried on one failure, and whether the call then succeeded."""

    failure: Failure
    strategy: Strategy
    attempt: int  # 0: the strategy the learner put first
    ok: bool


class ErrorRecorder:
    """The ``errors`` middleware: fingerprints every failure, then tries learned recoveries."""

    def __init__(
        self,
        learner: Learner,
        *,
        attempts: int = 2,
        backoff_s: float = 0.2,
        skip_tools: bool = True,
        listeners: list[Callable[[Recovery], Any]] | None = None,
    ) -> None:
        self.learner = learner
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.skip_tools = skip_tools
        self.listeners = list(listeners or [])

    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any:
        try:
            return await proceed()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = fingerprint(call, exc)
            await self.learner.seen(failure)
            if isinstance(exc, BreakerOpen):
                raise  # the breaker says when to try again; a retry now would be refused too
            if isinstance(exc, InvalidInput) and call.kind is not CallKind.TOOL:
                raise  # a wrong model name or setting: no retry or rewording changes it
            return await self.recover(call, proceed, exc, failure)

    async def recover(
        self, call: Call, proceed: Proceed[Any], error: Exception, failure: Failure
    ) -> Any:
        ranked = await self.learner.rank(failure, fitting(call, failure))
        for attempt, strategy in enumerate(ranked[: self.attempts]):
            if not self.prepare(call, strategy, failure):
                continue
            if strategy is Strategy.RETRY:
                await asyncio.sleep(self.backoff_s * 2**attempt * (0.5 + self.learner.rng.random()))
            try:
                result = await proceed()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self.outcome(Recovery(failure, strategy, attempt, ok=False))
                error = exc
                continue
            await self.outcome(Recovery(failure, strategy, attempt, ok=True))
            return result
        if (
            call.kind is CallKind.TOOL
            and self.skip_tools
            and failure.category is not Category.AUTH
            and not (call.request or {}).get("alternatives")  # the registry tries those first
        ):
            return f"[tool {call.dependency} was skipped: {error}]"
        raise error

    def prepare(self, call: Call, strategy: Strategy, failure: Failure) -> bool:
        """Change the call's request for the strategy; False where it cannot be applied."""
        request = call.request
        if strategy is Strategy.RETRY:
            return True
        if request is None or not isinstance(request.get("messages"), list):
            return False
        messages: list[dict[str, Any]] = request["messages"]
        if strategy is Strategy.REPAIR_OUTPUT:
            content = REPAIR_PROMPT.format(problem=failure.message[:200])
            request["messages"] = [*messages, {"role": "user", "content": content}]
            return True
        if strategy is Strategy.SHRINK_CONTEXT:
            request["messages"] = shrink(messages)
            return len(request["messages"]) < len(messages)
        return False

    async def outcome(self, recovery: Recovery) -> None:
        await self.learner.reward(recovery.failure, recovery.strategy, recovery.ok)
        for listener in self.listeners:
            listener(recovery)


def shrink(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Half of the non-system messages dropped, the oldest first; the last one always stays."""
    others = [i for i, m in enumerate(messages[:-1]) if m.get("role") != "system"]
    drop = set(others[: (len(others) + 1) // 2])
    return [m for i, m in enumerate(messages) if i not in drop]
