"""An agent's progress, kept from its events and reported through a status sink.

The tracker follows one agent's events on the bus — tasks started and finished, model calls,
failures — and reports its `AgentStatus` (phase, active and completed tasks, tokens, what it
works on, the last error, the p95 latency of its last 100 steps, a step being one model call)
whenever something changed, at most every `min_interval_s`, and as a heartbeat every
`heartbeat_s` in between. A failing report is logged and retried on the next
change; it never stops the agent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable

from hive.api.agentteam import (
    AgentPhase,
    AgentStatus,
    ErrorPatternStatus,
    FaultCount,
    FaultProblem,
    Role,
    ToolCallCount,
)
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.reporting import StatusSink
from hive.runtime.resilience.report import ResilienceReport

log = logging.getLogger(__name__)
FaultReport = Callable[[str], tuple[list[FaultCount], list[FaultProblem]]]
STEP_WINDOW = 100  # the last steps whose latency the p95 is taken over


def p95(values: list[float]) -> int | None:
    """The 95th percentile (nearest rank) of `values`, rounded up to a whole ms; None if none."""
    if not values:
        return None
    ordered = sorted(values)
    return math.ceil(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)])


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class ProgressTracker:
    def __init__(
        self,
        name: str,
        role: Role | None,
        sink: StatusSink,
        tokens: Callable[[], int],
        *,
        heartbeat_s: float = 15.0,
        min_interval_s: float = 0.5,
        faults: FaultReport | None = None,
        resilience: ResilienceReport | None = None,
        team_patterns: bool = False,
        tool_calls: Callable[[], list[ToolCallCount]] | None = None,
        queue_depth: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.name = name
        self.role = role
        self.sink = sink
        self.tokens = tokens
        self.heartbeat_s = heartbeat_s
        self.min_interval_s = min_interval_s
        self.faults = faults  # the ChaosExperiment faults injected into its calls, if any
        self.resilience = resilience  # its circuit breakers and the team's error patterns
        self.team_patterns = team_patterns  # the coordinator reports the team's error patterns
        self.tool_calls = tool_calls  # its calls per tool version (ToolVersion consumers)
        self.queue_depth = queue_depth  # with replicas: its work queue's depth, read each report
        self.depth: int | None = None
        self.error_patterns: list[ErrorPatternStatus] = []
        self.active = 0
        self.completed = 0
        self.failed = False
        self.last_error: str | None = None
        self.current: str | None = None
        self.steps_ms: deque[float] = deque(maxlen=STEP_WINDOW)  # a step is one model call
        self.changed = asyncio.Event()
        self.reports = 0

    def on_event(self, event: Event) -> None:
        if event.agent != self.name:
            return
        if event.kind is EventKind.TASK_STARTED:
            self.active += 1
            self.current = " ".join(str(event.data.get("task", "")).split())[:250]
        elif event.kind is EventKind.TASK_FINISHED:
            self.active = max(0, self.active - 1)
            self.completed += 1
            if not event.data.get("ok", True):
                self.last_error = str(event.data.get("error") or "failed")[:1000]
            if not self.active:
                self.current = None
        elif event.kind is EventKind.MODEL_CALLED:
            duration = event.data.get("duration_ms")
            if isinstance(duration, int | float) and not isinstance(duration, bool):
                self.steps_ms.append(max(0.0, float(duration)))
        elif event.kind in (EventKind.FAILED, EventKind.TOOL_FAILED):
            self.last_error = str(event.data.get("error") or "failed")[:1000]
        elif event.kind not in (
            EventKind.FAULT_INJECTED,
            EventKind.FAULT_SKIPPED,
            EventKind.BREAKER_CHANGED,
            EventKind.CAPABILITY_CHANGED,
        ):
            return
        self.changed.set()

    def status(self, phase: AgentPhase | None = None) -> AgentStatus:
        if phase is None:
            phase = AgentPhase.WORKING if self.active else AgentPhase.IDLE
        faults, problems = self.faults(self.name) if self.faults else ([], [])
        return AgentStatus(
            faults=faults,
            fault_problems=problems,
            name=self.name,
            role=self.role,
            phase=phase,
            tasks_active=self.active,
            tasks_completed=self.completed,
            tokens_used=self.tokens(),
            step_latency_p95_ms=p95(list(self.steps_ms)),
            current_task=self.current,
            last_error=self.last_error,
            last_heartbeat=now(),
            breakers=self.resilience.breaker_statuses() if self.resilience else [],
            capability=self.resilience.capability if self.resilience else None,
            error_patterns=self.error_patterns,
            tool_calls=self.tool_calls() if self.tool_calls else [],
            queue_depth=self.depth,
        )

    async def report(self, phase: AgentPhase | None = None) -> None:
        if self.resilience is not None and self.team_patterns:
            try:
                self.error_patterns = await self.resilience.error_patterns()
            except Exception as exc:  # the store is help, not a reason to stop reporting
                log.warning("error patterns of the team not read: %s", exc)
        if self.queue_depth is not None:
            try:
                self.depth = await self.queue_depth()
            except Exception as exc:
                log.warning("work queue depth not read: %s", exc)
        try:
            await self.sink.report(self.status(phase))
            self.reports += 1
        except Exception as exc:  # reporting must never stop the agent
            log.warning("status report of %s failed: %s", self.name, exc)

    async def run(self, bus: EventBus, stop: asyncio.Event) -> None:
        """Report on every change (throttled) and on every heartbeat until `stop` is set."""
        unsubscribe = bus.subscribe(self.on_event)
        try:
            await self.report()
            while not stop.is_set():
                waiters = {
                    asyncio.ensure_future(self.changed.wait()),
                    asyncio.ensure_future(stop.wait()),
                }
                _, pending = await asyncio.wait(
                    waiters, timeout=self.heartbeat_s, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in pending:
                    waiter.cancel()
                if stop.is_set():
                    break
                self.changed.clear()
                await self.report()
                await asyncio.sleep(self.min_interval_s)
        finally:
            unsubscribe()
