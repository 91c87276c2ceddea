"""The team's events as spans: each delegation, review, approval, vote, subgoal change, ...

A subscriber of the agent's event bus. It runs in the task that publishes the event, so each
span (``<what> <agent>``, e.g. ``delegate lead``) is a child of the span current there (the run,
or the peer request being served); it carries the event's data as ``hive.*`` attributes and is an
error for a rejection, a deadlock or a failure. A finished chain of thought or plan search
carries its whole record (`hive.runtime.reasoning.records`) as JSON in ``hive.reasoning``, which
``hive trace show`` renders under the span. Model and tool calls have spans of their own
(`hive.runtime.tracing.calls`), so their events are left out here.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from hive.runtime.events import Event, EventKind
from hive.runtime.reasoning.records import reasoning_record

SPAN_NAMES = {
    EventKind.DELEGATED: "delegate",
    EventKind.REVIEWED: "review",
    EventKind.REVISION_REQUESTED: "request revision",
    EventKind.APPROVED: "approve",
    EventKind.REJECTED: "reject",
    EventKind.DECOMPOSED: "decompose",
    EventKind.PLAN_DECOMPOSED: "decompose plan",
    EventKind.PLAN_SEARCHED: "search plan",
    EventKind.THOUGHT_FINISHED: "think",
    EventKind.ROUND: "round",
    EventKind.SYNTHESIZED: "synthesize",
    EventKind.CONVERGED: "converge",
    EventKind.PROPOSED: "propose",
    EventKind.VOTED: "vote",
    EventKind.AGREED: "agree",
    EventKind.DEADLOCKED: "deadlock",
    EventKind.SUBGOAL_CHANGED: "subgoal",
    EventKind.FAILED: "fail",
    EventKind.BREAKER_CHANGED: "breaker",
    EventKind.FAULT_INJECTED: "fault",
    EventKind.DEGRADED_ANSWER: "degrade",
}
ERRORS = {EventKind.REJECTED, EventKind.DEADLOCKED, EventKind.FAILED}
VALUE_LIMIT = 1024
REASONING = "hive.reasoning"  # the JSON of a reasoning record, whole


def _attribute(value: Any) -> str | int | float | bool | None:
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value[:VALUE_LIMIT]
    if value is None:
        return None
    return str(value)[:VALUE_LIMIT]


class EventSpans:
    """Bus subscriber: one short span per team event of `SPAN_NAMES`."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def __call__(self, event: Event) -> None:
        name = SPAN_NAMES.get(event.kind)
        if name is None:
            return
        attributes: dict[str, Any] = {}
        for key, value in event.data.items():
            converted = _attribute(value) if key != "record" else None
            if converted is not None:
                attributes[f"hive.{key}"] = converted
        record = reasoning_record(event)
        if record is not None:
            attributes[REASONING] = json.dumps(record, default=str)
        span = self.tracer.start_span(f"{name} {event.agent}", attributes=attributes)
        if event.kind in ERRORS:
            span.set_status(
                Status(StatusCode.ERROR, str(event.data.get("error") or event.kind.value))
            )
        span.end()
