"""Spans and team events at the traces and logs boundary: whatever code put a task's email or
card on a span (an event's data, an exception, a status, recorded tool content), the exported
span holds neither; events shown in a log are scrubbed while the bus keeps its data."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from hive.api.privacy import Boundary, DetectionMode, PrivacySpec
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.privacy.guard import Guard
from hive.runtime.privacy.traces import logged_events, scrub_exports
from hive.runtime.resilience.calls import Call, CallKind, Chain
from hive.runtime.tracing.calls import TracedCalls
from hive.runtime.tracing.events import EventSpans
from hive.runtime.tracing.setup import Tracing, tracing_from
from hive.settings import TracingSettings

CARD, EMAIL = "4111 1111 1111 1111", "jane.doe@example.com"
TASK = f"Refund card {CARD} and mail {EMAIL}"


@pytest.fixture
def guard() -> Guard:
    return Guard(PrivacySpec(mode=DetectionMode.FAST), key="trace test key 0123456789")


def traced(guard: Guard | None) -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing = tracing_from(TracingSettings(), "test", exporter=exporter)
    assert tracing is not None
    if guard is not None:
        scrub_exports(tracing, guard)
    return tracing, exporter


async def make_spans(tracing: Tracing) -> None:
    bus = EventBus()
    bus.subscribe(EventSpans(tracing.tracer))
    await bus.publish(Event(EventKind.DELEGATED, "lead", {"to": "clerk", "task": TASK}))
    await bus.publish(Event(EventKind.FAILED, "clerk", {"error": f"no account for {EMAIL}"}))
    with tracing.tracer.start_as_current_span("work") as span:
        span.record_exception(ValueError(f"card {CARD} declined"))
        span.set_status(Status(StatusCode.ERROR, f"card {CARD} declined"))
        span.set_attribute("hive.notes", (f"to {EMAIL}", "ok"))
    chain = Chain((TracedCalls(tracing.tracer, record_content=True),), "clerk")

    async def crm() -> Any:
        return {"customer": TASK}

    await chain.run(Call(CallKind.TOOL, "crm", "call"), crm)
    assert tracing.flush()


def exported_text(exporter: InMemorySpanExporter) -> str:
    return "\n".join(
        f"{s.attributes} {[(e.name, e.attributes) for e in s.events]} {s.status.description}"
        for s in exporter.get_finished_spans()
    )


async def test_without_a_policy_the_spans_carry_the_raw_texts() -> None:
    tracing, exporter = traced(None)
    await make_spans(tracing)
    text = exported_text(exporter)
    assert EMAIL in text
    assert CARD in text


async def test_no_raw_email_or_card_reaches_an_exported_span(guard: Guard) -> None:
    tracing, exporter = traced(guard)
    await make_spans(tracing)
    spans = exporter.get_finished_spans()
    assert len(spans) == 4
    text = exported_text(exporter)
    assert EMAIL not in text
    assert CARD not in text
    assert "<EMAIL_ADDRESS>" in text
    assert "<CREDIT_CARD>" in text
    delegate = next(s for s in spans if s.name == "delegate lead")
    assert delegate.attributes is not None
    assert delegate.attributes["hive.task"] == "Refund card <CREDIT_CARD> and mail <EMAIL_ADDRESS>"
    assert delegate.attributes["hive.to"] == "clerk"  # what holds nothing personal stays
    work = next(s for s in spans if s.name == "work")
    assert work.status.description == "card <CREDIT_CARD> declined"
    assert work.attributes is not None
    assert work.attributes["hive.notes"] == ("to <EMAIL_ADDRESS>", "ok")
    counted = {(r["entity"], r["boundary"]) for r in guard.ledger.rows()}
    assert ("EMAIL_ADDRESS", Boundary.LOGS.value) in counted


async def test_a_policy_without_the_logs_boundary_leaves_spans_alone() -> None:
    spec = PrivacySpec(mode=DetectionMode.FAST, boundaries=[Boundary.MODEL_PROMPTS])
    tracing, exporter = traced(Guard(spec, key="trace test key 0123456789"))
    await make_spans(tracing)
    assert EMAIL in exported_text(exporter)


async def test_events_shown_in_a_log_are_scrubbed_and_the_bus_keeps_its_data(
    guard: Guard,
) -> None:
    bus = EventBus()
    raw: list[Event] = []
    shown: list[Event] = []
    bus.subscribe(raw.append)
    logged_events(bus, guard).subscribe(shown.append)
    event = Event(EventKind.DELEGATED, "lead", {"to": "clerk", "task": TASK, "n": 2})
    await bus.publish(event)
    assert raw == [event]
    (seen,) = shown
    assert seen.data == {
        "to": "clerk",
        "task": "Refund card <CREDIT_CARD> and mail <EMAIL_ADDRESS>",
        "n": 2,
    }
    assert (seen.kind, seen.agent, seen.at) == (event.kind, event.agent, event.at)
    assert logged_events(bus, None) is bus
