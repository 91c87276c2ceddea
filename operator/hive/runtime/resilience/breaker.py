"""Circuit breakers: one per dependency an agent calls, as a middleware of the call chain.

A breaker is *closed* while its dependency works: every call passes and its outcome goes into a
count-based window of the last ``window_size`` calls. Once the window holds ``minimum_calls``
outcomes and the share of failures reaches ``failure_rate_threshold`` it *opens*: calls are
refused at once with a retryable :class:`~hive.errors.Unavailable` that names the dependency and
when it may be tried again. After ``open_duration_s`` it turns *half-open* and lets at most
``half_open_max_calls`` probes through at a time; ``half_open_successes`` successful probes
close it (with an empty window), one failed probe opens it again.

Only failures of the dependency count (timeouts, transport errors, HTTP 5xx/429, anything
retryable); a call the caller got wrong (``InvalidInput``), an unusable answer and a cancelled
call leave the window as it was. An outcome of a call admitted before the breaker changed state
is ignored, so a slow call from a closed period cannot reopen a breaker that is probing.

The state machine (:class:`Breaker`) is synchronous and takes the time as an argument, so it
can be tested step by step; :class:`Breakers` is the middleware that keeps one per
``call.key`` and tells a listener about every transition.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hive.api.agentteam import BreakerState
from hive.errors import ExternalFailure, HiveError, Unavailable
from hive.runtime.resilience.calls import Call, Proceed

SERVER_SIDE_STATUS = re.compile(r"\bHTTP (5\d\d|429)\b")


@dataclass(frozen=True)
class BreakerSettings:
    """How every breaker of one agent behaves (the team's ``spec.resilience.breaker``)."""

    failure_rate_threshold: float = 0.5
    window_size: int = 10
    minimum_calls: int = 5
    open_duration_s: float = 5.0
    half_open_max_calls: int = 1
    half_open_successes: int = 1


def counts_as_failure(exc: BaseException) -> bool:
    """Whether an error says the dependency is failing (not the caller, not a cancellation)."""
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    if isinstance(exc, HiveError):
        if exc.retryable:
            return True
        return isinstance(exc, ExternalFailure) and bool(SERVER_SIDE_STATUS.search(exc.message))
    return isinstance(exc, OSError)


class BreakerOpen(Unavailable):
    """A call refused by an open (or fully probing) breaker; retryable once it may pass."""

    def __init__(self, dependency: str, retry_in_s: float) -> None:
        when = f"in {retry_in_s:.1f}s" if retry_in_s > 0 else "when a probe call finishes"
        super().__init__(
            f"circuit breaker of {dependency} is open after repeated failures; "
            f"calls may be tried again {when}"
        )
        self.dependency = dependency
        self.retry_in_s = retry_in_s


@dataclass(frozen=True)
class Permit:
    """A call let through: the state period it was admitted in, and whether it is a probe."""

    epoch: int
    probe: bool


@dataclass
class Breaker:
    """The state machine of one dependency's breaker; every method takes the current time."""

    dependency: str
    settings: BreakerSettings = field(default_factory=BreakerSettings)
    state: BreakerState = BreakerState.CLOSED
    since: float = 0.0  # when the current state began (the clock's time)
    epoch: int = 0  # bumped on every transition
    window: deque[bool] = field(default_factory=deque)  # True: failed
    failures: int = 0  # failures in the window
    probes: int = 0  # half-open calls in flight
    probe_successes: int = 0

    def __post_init__(self) -> None:
        self.window = deque(self.window, maxlen=self.settings.window_size)

    @property
    def failure_rate(self) -> float:
        return self.failures / len(self.window) if self.window else 0.0

    def admit(self, now: float) -> Permit:
        """Let a call through, or raise :class:`BreakerOpen`."""
        if self.state is BreakerState.OPEN:
            reopens = self.since + self.settings.open_duration_s
            if now < reopens:
                raise BreakerOpen(self.dependency, reopens - now)
            self._enter(BreakerState.HALF_OPEN, now)
        if self.state is BreakerState.HALF_OPEN:
            if self.probes >= self.settings.half_open_max_calls:
                raise BreakerOpen(self.dependency, 0.0)
            self.probes += 1
            return Permit(self.epoch, probe=True)
        return Permit(self.epoch, probe=False)

    def record(self, permit: Permit, failed: bool | None, now: float) -> None:
        """The outcome of an admitted call: failed, succeeded, or None (does not count)."""
        if permit.epoch != self.epoch:
            return  # admitted in an earlier state period
        if permit.probe:
            self.probes -= 1
            if failed is None:
                return
            if failed:
                self._enter(BreakerState.OPEN, now)
                return
            self.probe_successes += 1
            if self.probe_successes >= self.settings.half_open_successes:
                self._enter(BreakerState.CLOSED, now)
            return
        if failed is None:
            return
        if len(self.window) == self.window.maxlen and self.window[0]:
            self.failures -= 1
        self.window.append(failed)
        self.failures += failed
        if (
            len(self.window) >= self.settings.minimum_calls
            and self.failure_rate >= self.settings.failure_rate_threshold
        ):
            self._enter(BreakerState.OPEN, now)

    def _enter(self, state: BreakerState, now: float) -> None:
        self.state = state
        self.since = now
        self.epoch += 1
        self.probes = 0
        self.probe_successes = 0
        if state is BreakerState.CLOSED:
            self.window.clear()
            self.failures = 0


@dataclass(frozen=True)
class BreakerChange:
    """A breaker's new state, as the agent reports it."""

    agent: str
    dependency: str
    state: BreakerState
    previous: BreakerState
    failures: int
    since: dt.datetime


Listener = Callable[[BreakerChange], Any]


class Breakers:
    """The middleware: one :class:`Breaker` per ``call.key``, created on first use."""

    def __init__(
        self,
        settings: BreakerSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        listeners: list[Listener] | None = None,
    ) -> None:
        self.settings = settings or BreakerSettings()
        self.clock = clock
        self.listeners = list(listeners or [])
        self.breakers: dict[str, Breaker] = {}

    def breaker(self, key: str) -> Breaker:
        found = self.breakers.get(key)
        if found is None:
            found = self.breakers[key] = Breaker(key, self.settings, since=self.clock())
        return found

    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any:
        breaker = self.breaker(call.key)
        before = breaker.state
        try:
            permit = breaker.admit(self.clock())
        finally:
            if breaker.state is not before:
                await self._changed(call, breaker, before)
        failed: bool | None = None
        try:
            result = await proceed()
            failed = False
            return result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failed = True if counts_as_failure(exc) else None
            raise
        finally:
            before = breaker.state
            breaker.record(permit, failed, self.clock())
            if breaker.state is not before:
                await self._changed(call, breaker, before)

    async def _changed(self, call: Call, breaker: Breaker, previous: BreakerState) -> None:
        elapsed = self.clock() - breaker.since
        change = BreakerChange(
            agent=call.agent,
            dependency=breaker.dependency,
            state=breaker.state,
            previous=previous,
            failures=breaker.failures,
            since=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=max(0.0, elapsed)),
        )
        for listener in self.listeners:
            result = listener(change)
            if asyncio.iscoroutine(result):
                await result
