"""An agent reports the p95 latency of its last steps (model calls) in its status entry."""

from __future__ import annotations

from hive.api.agentteam import AgentStatus
from hive.runtime.events import Event, EventKind
from hive.runtime.teams.progress import STEP_WINDOW, ProgressTracker, p95


class Sink:
    async def report(self, status: AgentStatus) -> None:  # pragma: no cover - unused
        pass


def tracker() -> ProgressTracker:
    return ProgressTracker("coder", None, Sink(), lambda: 0)


def test_p95_is_the_nearest_rank() -> None:
    assert p95([]) is None
    assert p95([12.2]) == 13
    assert p95([float(v) for v in range(1, 101)]) == 95
    assert p95([10.0] * 19 + [900.0]) == 10, "one slow step in twenty is the 100th percentile"


def test_no_step_no_latency_then_the_steps_of_its_own_events() -> None:
    t = tracker()
    assert t.status().step_latency_p95_ms is None
    for ms in (100, 200, 300):
        t.on_event(Event(EventKind.MODEL_CALLED, "coder", {"step": 1, "duration_ms": ms}))
    t.on_event(Event(EventKind.MODEL_CALLED, "other", {"step": 1, "duration_ms": 9000}))
    t.on_event(Event(EventKind.MODEL_CALLED, "coder", {"step": 1}))  # an older sender: no time
    assert t.status().step_latency_p95_ms == 300
    assert t.status().wire()["stepLatencyP95Ms"] == 300


def test_only_the_last_steps_count() -> None:
    t = tracker()
    for _ in range(STEP_WINDOW):
        t.on_event(Event(EventKind.MODEL_CALLED, "coder", {"duration_ms": 5000}))
    for _ in range(STEP_WINDOW):
        t.on_event(Event(EventKind.MODEL_CALLED, "coder", {"duration_ms": 40}))
    assert t.status().step_latency_p95_ms == 40, "the slow steps under the faults are gone"
