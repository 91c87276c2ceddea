"""Typed events of agents and teams, on a bus that status, tracing and the debugger subscribe to."""

from __future__ import annotations

import datetime as dt
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)


class EventKind(StrEnum):
    STARTED = "started"
    MODEL_CALLED = "model-called"
    TOOL_CALLED = "tool-called"
    TOOL_FAILED = "tool-failed"
    DELEGATED = "delegated"
    REVIEWED = "reviewed"
    REVISION_REQUESTED = "revision-requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    DECOMPOSED = "decomposed"
    ROUND = "round"
    PLAN_PROGRESS = "plan-progress"
    SYNTHESIZED = "synthesized"
    CONVERGED = "converged"
    PROPOSED = "proposed"
    VOTED = "voted"
    AGREED = "agreed"
    DEADLOCKED = "deadlocked"
    TASK_STARTED = "task-started"
    TASK_FINISHED = "task-finished"
    THOUGHT_STARTED = "thought-started"
    THOUGHT_EXPANDED = "thought-expanded"
    THOUGHT_LOOP = "thought-loop"
    THOUGHT_CORRECTED = "thought-corrected"
    THOUGHT_FINISHED = "thought-finished"
    PLAN_SEARCHED = "plan-searched"
    PLAN_DECOMPOSED = "plan-decomposed"
    SUBGOAL_CHANGED = "subgoal-changed"
    TEAM_STARTED = "team-started"
    TEAM_FINISHED = "team-finished"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    FAULT_INJECTED = "fault-injected"  # a ChaosExperiment's fault hit one of the agent's calls
    FAULT_SKIPPED = "fault-skipped"  # a fault the agent could not use (malformed, unknown, ...)
    BREAKER_CHANGED = "breaker-changed"  # a circuit breaker of the agent opened, probes, closed
    CAPABILITY_CHANGED = "capability-changed"  # the agent's capability level went down or up
    DEGRADED_ANSWER = "degraded-answer"  # a fallback model, cached or partial answer was used
    # the agent's working memory dropped, cut or summarised parts of its context to keep a request
    # within the agent's context budget (data: budget, tokens_before, tokens, dropped, cut, ...)
    CONTEXT_OPTIMIZED = "context-optimized"
    # a catalog tool call finished (data: tool, version, written_for, outcome, status, latency_s,
    # deprecated, error)
    TOOL_OUTCOME = "tool-outcome"


# the id of the team task whose work is running now (a member sets it while it executes one, so
# nested delegations and every event they publish can be attributed to their task)
current_task: ContextVar[str | None] = ContextVar("hive_current_task", default=None)


@dataclass(frozen=True)
class Event:
    kind: EventKind
    agent: str
    data: dict[str, Any] = field(default_factory=dict)
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


Subscriber = Callable[[Event], Awaitable[None] | None]


class EventBus:
    """Publish events to every subscriber, in order; a failing subscriber never stops the agent."""

    def __init__(self, keep: int = 10_000) -> None:
        self._subscribers: list[Subscriber] = []
        self.history: deque[Event] = deque(maxlen=keep)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def publish(self, event: Event) -> None:
        self.history.append(event)
        for subscriber in list(self._subscribers):
            try:
                result = subscriber(event)
                if result is not None:
                    await result
            except Exception:
                log.exception("event subscriber failed on %s", event.kind)
