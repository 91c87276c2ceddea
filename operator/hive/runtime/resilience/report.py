"""What an agent tells about its resilience: its breakers, its capability level and the team's
error patterns.

Every breaker transition becomes, at once, a ``breaker-changed`` event on the agent's bus (the
progress tracker reports the status entry on it, not only on the next heartbeat), the
``hive_breaker_state`` gauge and a ``hive_breaker_transitions_total`` count; its capability
level goes into its status entry and the ``hive_capability_level`` gauge. The coordinator's
entry also carries the team's top error patterns with their learned fix, read from the team's
learning store.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge

from hive.api.agentteam import (
    BreakerState,
    BreakerStatus,
    CapabilityLevel,
    CapabilityStatus,
    ErrorPatternStatus,
)
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.resilience.breaker import BreakerChange
from hive.runtime.resilience.learning import LearningStore, top_patterns
from hive.runtime.resilience.patterns import ErrorPattern

STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
BREAKER_STATE = Gauge(
    "hive_breaker_state",
    "Circuit breaker state of an agent's dependency: 0 closed, 1 half-open, 2 open.",
    ["agent", "dependency"],
)
BREAKER_TRANSITIONS = Counter(
    "hive_breaker_transitions_total",
    "Circuit breaker transitions of an agent's dependency, by the state entered.",
    ["agent", "dependency", "state"],
)


LEVEL_VALUE = {CapabilityLevel.FULL: 0, CapabilityLevel.REDUCED: 1, CapabilityLevel.MINIMAL: 2}
CAPABILITY_LEVEL = Gauge(
    "hive_capability_level",
    "Capability level an agent works at: 0 full, 1 reduced, 2 minimal.",
    ["agent"],
)


class ResilienceReport:
    def __init__(self, bus: EventBus | None = None, store: LearningStore | None = None) -> None:
        self.bus = bus
        self.store = store
        self.breakers: dict[str, BreakerStatus] = {}
        self.capability: CapabilityStatus | None = None

    def on_capability(self, agent: str, status: CapabilityStatus) -> None:
        """A capability listener (see :class:`~hive.runtime.resilience.degradation.Degradation`)."""
        self.capability = status
        CAPABILITY_LEVEL.labels(agent).set(LEVEL_VALUE[CapabilityLevel(status.level)])

    async def on_change(self, change: BreakerChange) -> None:
        """A breaker listener (see :class:`~hive.runtime.resilience.breaker.Breakers`)."""
        state = change.state
        self.breakers[change.dependency] = BreakerStatus(
            dependency=change.dependency,
            state=state,
            failures=change.failures,
            since=change.since.replace(microsecond=0),
        )
        BREAKER_STATE.labels(change.agent, change.dependency).set(STATE_VALUE[state])
        BREAKER_TRANSITIONS.labels(change.agent, change.dependency, state.value).inc()
        if self.bus is not None:
            data = {"dependency": change.dependency, "state": state.value, "from": change.previous}
            await self.bus.publish(Event(EventKind.BREAKER_CHANGED, change.agent, data))

    def breaker_statuses(self) -> list[BreakerStatus]:
        """Every breaker, open ones first (the status entry holds at most 200)."""
        order = sorted(
            self.breakers, key=lambda k: (self.breakers[k].state is BreakerState.CLOSED, k)
        )
        return [self.breakers[key] for key in order][:200]

    async def error_patterns(self, n: int = 5) -> list[ErrorPatternStatus]:
        """The team's most frequent patterns; empty when there is no store."""
        if self.store is None:
            return []
        return pattern_statuses(top_patterns(await self.store.patterns(), n))


def pattern_statuses(patterns: Sequence[ErrorPattern]) -> list[ErrorPatternStatus]:
    out = []
    for pattern in patterns:
        best = pattern.best()
        out.append(
            ErrorPatternStatus(
                fingerprint=pattern.failure.fingerprint,
                dependency=pattern.failure.dependency[:256],
                category=pattern.failure.category.value,
                message=pattern.failure.message[:300],
                count=pattern.count,
                last_seen=pattern.last_seen.replace(microsecond=0),
                fix=best[0] if best else None,
                success_rate=round(best[1], 3) if best else None,
            )
        )
    return out
