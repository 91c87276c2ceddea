"""The lean spans of an agent's steps (`hive.runtime.tracing.spans`) are the spans the SDK would
make: the same names, kinds, parents, attributes, status and exception events, through the same
processors; exported over OTLP to a real Jaeger they read back whole, under the process's
resource (service.instance.id, the team). A trace sampled out stays out."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from hive.dev.tracing import DevJaeger
from hive.errors import HiveError, Unavailable
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.resilience.calls import Call, CallKind, Chain
from hive.runtime.tracing.calls import TracedCalls
from hive.runtime.tracing.events import EventSpans
from hive.runtime.tracing.query import TraceTree, fetch_trace
from hive.runtime.tracing.runs import run_span, trace_id_of
from hive.runtime.tracing.setup import Tracing, tracing_from
from hive.runtime.tracing.spans import StepSpan, StepTracer
from hive.settings import TracingSettings
from tests.support import until

pytestmark = pytest.mark.integration
REPLY = SimpleNamespace(
    prompt_tokens=41, completion_tokens=9, finish_reason="stop", content="x", tool_calls=[]
)


async def one_step(tracer: trace.Tracer) -> str | None:
    """A run whose lead calls a peer, within which a tool call fails, then calls its model and
    delegates; the run's trace id."""
    chain = Chain((TracedCalls(tracer),), "lead")
    bus = EventBus()
    bus.subscribe(EventSpans(tracer))

    async def search() -> Any:
        raise Unavailable("search is down")

    async def peer() -> Any:
        with pytest.raises(Unavailable):
            await chain.run(Call(CallKind.TOOL, "search", "call"), search)
        return {"ok": True}

    async def model() -> Any:
        return REPLY

    with run_span(tracer, "spans", "ns", "lead", 1) as run:
        await chain.run(Call(CallKind.PEER, "researcher", "tasks"), peer)
        await chain.run(Call(CallKind.MODEL, "m", "complete"), model)
        await bus.publish(Event(EventKind.DELEGATED, "lead", {"to": "researcher", "score": 0.5}))
    return trace_id_of(run)


def in_memory(tracing_settings: TracingSettings) -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing = tracing_from(tracing_settings, "agent-lead", exporter=exporter)
    assert tracing is not None
    return tracing, exporter


def shape(span: ReadableSpan) -> tuple[Any, ...]:
    """What an exporter reads of a span, less its ids and times."""
    return (
        span.name,
        span.kind,
        dict(span.attributes or {}),
        span.status.status_code,
        span.status.description,
        [(e.name, sorted(e.attributes or {})) for e in span.events],
        span.instrumentation_scope.name if span.instrumentation_scope else None,
        span.resource is not None,
    )


async def test_lean_spans_are_the_spans_the_sdk_would_make() -> None:
    lean, lean_spans = in_memory(TracingSettings())
    assert isinstance(lean.tracer, StepTracer)
    sdk, sdk_spans = in_memory(TracingSettings())
    await one_step(lean.tracer)
    await one_step(sdk.provider.get_tracer("hive"))  # the SDK's own spans
    assert lean.flush()
    assert sdk.flush()
    made = list(lean_spans.get_finished_spans())
    wanted = list(sdk_spans.get_finished_spans())
    assert [shape(s) for s in made] == [shape(s) for s in wanted]
    # the run's root comes from the SDK; everything under it is lean
    assert [isinstance(s, StepSpan) for s in made] == [True] * 4 + [False]
    by_name = {s.name: s for s in made}
    run, peer, tool = (
        by_name["invoke_workflow spans"],
        by_name["invoke_agent researcher"],
        by_name["execute_tool search"],
    )
    assert peer.kind is SpanKind.CLIENT
    assert tool.parent is not None
    assert peer.parent is not None
    assert tool.parent.span_id == peer.context.span_id
    assert peer.parent.span_id == run.context.span_id
    assert {s.context.trace_id for s in made} == {run.context.trace_id}
    assert len({s.context.span_id for s in made}) == len(made)
    assert tool.status.status_code is StatusCode.ERROR
    (exception,) = tool.events
    assert exception.attributes is not None
    assert exception.attributes["exception.type"] == "hive.errors.Unavailable"
    assert by_name["chat m"].attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert made[0].resource is run.resource


async def test_a_trace_sampled_out_stays_out() -> None:
    tracing, exporter = in_memory(TracingSettings(sample_ratio=0.0))
    assert await one_step(tracing.tracer) is None
    assert tracing.flush()
    assert list(exporter.get_finished_spans()) == []


def test_lean_spans_read_back_whole_from_jaeger(jaeger: DevJaeger) -> None:
    settings = TracingSettings(otlp_endpoint=jaeger.otlp_endpoint)
    tracing = tracing_from(settings, "agent-lead", attributes={"hive.team": "spans"})
    assert tracing is not None
    trace_id = asyncio.run(one_step(tracing.tracer))
    assert trace_id is not None
    assert tracing.flush()
    tracing.shutdown()

    def fetched() -> TraceTree | None:
        try:
            tree = fetch_trace(jaeger.query_url, trace_id)
        except HiveError:
            return None
        return tree if len(tree.spans()) == 5 else None

    tree = until(fetched, 30, f"trace {trace_id} in Jaeger", every_s=0.2)
    (root,) = tree.roots
    assert root.name == "invoke_workflow spans"
    assert [c.name for c in root.children] == [
        "invoke_agent researcher",
        "chat m",
        "delegate lead",
    ]
    peer, chat, delegate = root.children
    (tool,) = peer.children
    assert tool.name == "execute_tool search"
    assert tool.error == "search is down"
    assert tool.attributes["error.type"] == "Unavailable"
    assert (chat.input_tokens, chat.output_tokens) == (41, 9)
    assert chat.attributes["gen_ai.request.model"] == "m"
    assert delegate.attributes["hive.to"] == "researcher"
    for span in tree.spans():
        assert span.service == "hive-agent-lead"
        assert span.process["hive.team"] == "spans"
        assert len(span.process["service.instance.id"]) == 36
    raw = httpx.get(f"{jaeger.query_url}/api/traces/{trace_id}", timeout=10).json()
    logs = next(s["logs"] for s in raw["data"][0]["spans"] if s["spanID"] == tool.span_id)
    fields = {f["key"]: f["value"] for f in logs[0]["fields"]}
    assert fields["event"] == "exception"
    assert "search is down" in fields["exception.stacktrace"]
