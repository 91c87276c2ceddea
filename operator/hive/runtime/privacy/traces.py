"""The traces and events boundary: spans scrubbed on their way to the backend, team events
scrubbed before a log or a terminal shows them.

A span leaves the process through its provider's `FilteredExporter`
(`hive.runtime.tracing.setup`); with a team's policy each one is copied there with every text it
carries through the guard (the policy's ``logs`` boundary, which covers logs, trace content and
events): string attributes (the team events' ``hive.*`` data, recorded prompts and results), the
attributes of its span events (an exception's message and stack trace) and its status
description. This runs in the exporter's thread, never on an agent's step, and catches what any
code put on a span, not only the content `TracedCalls` records.

`logged_events` gives the team's events to the line log and live view of ``hive run`` with
their data scrubbed the same way; the bus itself (status, debugger, tracing) is left as it is.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Status

from hive.api.privacy import Boundary
from hive.runtime.events import Event, EventBus
from hive.runtime.privacy.guard import Guard
from hive.runtime.tracing.setup import Tracing


def _value(guard: Guard, value: Any, source: str) -> Any:
    if isinstance(value, str):
        return guard.scrub_text(value, Boundary.LOGS, source)
    if isinstance(value, tuple | list):
        return tuple(_value(guard, v, source) for v in value)
    return value


def _attributes(guard: Guard, attributes: Any, source: str) -> dict[str, Any]:
    return {key: _value(guard, value, source) for key, value in (attributes or {}).items()}


def scrubbed_span(guard: Guard, span: ReadableSpan) -> ReadableSpan:
    """A copy of `span` whose texts went through `guard` (`span` itself where nothing changed)."""
    source = f"trace:{span.name}"
    attributes = _attributes(guard, span.attributes, source)
    events = [
        SpanEvent(e.name, _attributes(guard, e.attributes, source), e.timestamp)
        for e in span.events
    ]
    status = span.status
    if status.description:
        status = Status(status.status_code, guard.scrub_text(status.description, Boundary.LOGS))
    if (
        attributes == dict(span.attributes or {})
        and all(a.attributes == b.attributes for a, b in zip(events, span.events, strict=True))
        and status.description == span.status.description
    ):
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def scrub_exports(tracing: Tracing | None, guard: Guard) -> None:
    """Every span `tracing` exports from now on is scrubbed by `guard` first."""
    if tracing is not None and tracing.exporter is not None and guard.applies(Boundary.LOGS):
        tracing.exporter.transform = lambda span: scrubbed_span(guard, span)


def scrubbed_event(guard: Guard, event: Event) -> Event:
    data = guard.scrub(event.data, Boundary.LOGS, f"event:{event.kind.value}")
    return Event(event.kind, event.agent, data, event.at)


def logged_events(bus: EventBus, guard: Guard | None) -> EventBus:
    """The events of `bus` as a log or terminal may show them: a bus that gets each one with its
    data scrubbed by `guard` (`bus` itself without a policy, or one not applied to logs)."""
    if guard is None or not guard.applies(Boundary.LOGS):
        return bus
    relay = EventBus(keep=1)

    async def forward(event: Event) -> None:
        await relay.publish(scrubbed_event(guard, event))

    bus.subscribe(forward)
    return relay
