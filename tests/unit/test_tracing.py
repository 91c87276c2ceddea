"""Spans of an agent's calls, of team events and of a run, on an in-memory exporter; the W3C
traceparent; a Jaeger trace's JSON as a tree. (Across real processes and a real Jaeger:
tests/integration/test_tracing.py.)"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import REGISTRY

from hive.errors import InvalidInput, Unavailable
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.resilience.calls import Call, CallKind, Chain
from hive.runtime.tracing.calls import CallMetrics, TracedCalls
from hive.runtime.tracing.events import EventSpans
from hive.runtime.tracing.propagation import inject
from hive.runtime.tracing.query import TraceNotFound, tree_from_jaeger
from hive.runtime.tracing.runs import run_span, trace_id_of
from hive.runtime.tracing.setup import Tracing, tracing_from
from hive.settings import TracingSettings


@pytest.fixture
def spans() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing = tracing_from(TracingSettings(), "test", exporter=exporter)
    assert tracing is not None
    return tracing, exporter


def finished(tracing: Tracing, exporter: InMemorySpanExporter) -> list[Any]:
    assert tracing.flush()
    return list(exporter.get_finished_spans())


def test_tracing_is_off_without_an_endpoint_and_refuses_a_bad_one() -> None:
    assert tracing_from(TracingSettings(), "agent") is None
    with pytest.raises(InvalidInput, match="otlpEndpoint"):
        tracing_from(TracingSettings(otlp_endpoint="127.0.0.1:4318"), "agent")


async def test_a_model_call_is_a_chat_span_with_the_genai_attributes_and_real_tokens(
    spans: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = spans
    chain = Chain((TracedCalls(tracing.tracer),), "writer")
    reply = SimpleNamespace(
        prompt_tokens=31, completion_tokens=7, finish_reason="stop", content="hi", tool_calls=[]
    )
    request = {"messages": [{"role": "user", "content": "secret prompt"}]}

    async def model() -> Any:
        return reply

    assert await chain.run(Call(CallKind.MODEL, "m1", "complete", request=request), model) is reply
    (span,) = finished(tracing, exporter)
    assert span.name == "chat m1"
    attributes = dict(span.attributes)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "m1"
    assert attributes["gen_ai.usage.input_tokens"] == 31
    assert attributes["gen_ai.usage.output_tokens"] == 7
    assert "gen_ai.input.messages" not in attributes  # content only when the team opts in


async def test_content_is_recorded_only_when_the_team_opts_in(
    spans: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = spans
    chain = Chain((TracedCalls(tracing.tracer, record_content=True),), "writer")
    reply = SimpleNamespace(prompt_tokens=1, completion_tokens=1, content="answer", tool_calls=[])
    request = {"messages": [{"role": "user", "content": "the prompt"}]}

    async def model() -> Any:
        return reply

    await chain.run(Call(CallKind.MODEL, "m1", "complete", request=request), model)
    (span,) = finished(tracing, exporter)
    assert "the prompt" in span.attributes["gen_ai.input.messages"]
    assert "answer" in span.attributes["gen_ai.output.messages"]


async def test_a_failed_tool_call_is_an_error_span_and_nested_calls_are_children(
    spans: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = spans
    chain = Chain((TracedCalls(tracing.tracer),), "writer")

    async def search() -> Any:
        raise Unavailable("search is down")

    async def peer() -> Any:
        with pytest.raises(Unavailable):
            await chain.run(Call(CallKind.TOOL, "search", "call"), search)
        return {"ok": True}

    await chain.run(Call(CallKind.PEER, "researcher", "tasks"), peer)
    tool, delegation = finished(tracing, exporter)
    assert tool.name == "execute_tool search"
    assert tool.attributes["gen_ai.tool.name"] == "search"
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes["error.type"] == "Unavailable"
    assert delegation.name == "invoke_agent researcher"
    assert tool.parent.span_id == delegation.context.span_id


async def test_the_call_metrics_count_tokens_by_agent_and_model() -> None:
    chain = Chain((CallMetrics(),), "metrics-agent")
    labels = {"agent": "metrics-agent", "model": "m9", "type": "input"}
    before = REGISTRY.get_sample_value("hive_model_tokens_total", labels) or 0.0

    async def model() -> Any:
        return SimpleNamespace(prompt_tokens=12, completion_tokens=3)

    await chain.run(Call(CallKind.MODEL, "m9", "complete"), model)
    assert REGISTRY.get_sample_value("hive_model_tokens_total", labels) == before + 12


async def test_team_events_become_spans_under_the_run_with_its_trace_id(
    spans: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = spans
    bus = EventBus()
    bus.subscribe(EventSpans(tracing.tracer))
    with run_span(tracing.tracer, "t", "ns", "lead", 3) as run:
        trace_id = trace_id_of(run)
        await bus.publish(Event(EventKind.DELEGATED, "lead", {"to": "writer", "score": 0.5}))
        await bus.publish(Event(EventKind.REJECTED, "lead", {"of": "writer", "error": "bad"}))
        await bus.publish(Event(EventKind.MODEL_CALLED, "lead", {"tokens": 3}))  # own span
    delegate, reject, root = finished(tracing, exporter)
    assert trace_id is not None
    assert len(trace_id) == 32
    assert root.name == "invoke_workflow t"
    assert root.parent is None
    assert format(root.context.trace_id, "032x") == trace_id
    assert delegate.name == "delegate lead"
    assert delegate.attributes["hive.to"] == "writer"
    assert delegate.parent.span_id == root.context.span_id
    assert reject.status.status_code is StatusCode.ERROR


async def test_the_traceparent_carries_the_current_span(
    spans: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, _ = spans
    headers: dict[str, str] = {}
    inject(headers)
    assert headers == {}  # no span, no traceparent
    with tracing.tracer.start_as_current_span("caller") as caller:
        inject(headers)
    context = caller.get_span_context()
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, span_id) == (
        "00",
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
    )
    assert int(flags, 16) & 1  # sampled


def test_a_jaeger_trace_becomes_a_tree_with_services_tokens_and_errors() -> None:
    data = {
        "data": [
            {
                "traceID": "ab" * 16,
                "processes": {"p1": {"serviceName": "hive-agent-lead"}, "p2": {"serviceName": "w"}},
                "spans": [
                    {
                        "spanID": "2",
                        "operationName": "chat m",
                        "references": [{"refType": "CHILD_OF", "spanID": "1"}],
                        "startTime": 20,
                        "duration": 5,
                        "processID": "p2",
                        "tags": [
                            {"key": "gen_ai.usage.input_tokens", "type": "int64", "value": 10},
                            {"key": "error", "type": "bool", "value": True},
                            {"key": "otel.status_description", "type": "string", "value": "x"},
                        ],
                    },
                    {
                        "spanID": "1",
                        "operationName": "invoke_workflow t",
                        "references": [],
                        "startTime": 10,
                        "duration": 50,
                        "processID": "p1",
                        "tags": [],
                    },
                ],
            }
        ]
    }
    tree = tree_from_jaeger(data, "ab" * 16)
    (root,) = tree.roots
    assert root.name == "invoke_workflow t"
    assert root.service == "hive-agent-lead"
    (child,) = root.children
    assert child.input_tokens == 10
    assert child.error == "x"
    assert child.service == "w"
    with pytest.raises(TraceNotFound):
        tree_from_jaeger({"data": []}, "00" * 16)


async def test_memory_and_sandbox_calls_are_spans_named_by_operation(
    spans: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = spans
    chain = Chain((TracedCalls(tracing.tracer),), "writer")

    async def answer() -> Any:
        return []

    await chain.run(Call(CallKind.MEMORY, "notes", "search"), answer)
    await chain.run(Call(CallKind.SANDBOX, "strict", "execute"), answer)
    memory, sandbox = finished(tracing, exporter)
    assert memory.name == "memory search notes"
    assert dict(memory.attributes) == {
        "hive.call.kind": "memory",
        "hive.call.dependency": "notes",
        "hive.call.operation": "search",
    }
    assert sandbox.name == "sandbox execute strict"


async def test_a_finished_chain_of_thought_travels_whole_on_its_span_and_shows_under_it(
    spans: tuple[Tracing, InMemorySpanExporter],
) -> None:
    import json

    from rich.console import Console

    from hive.cli.trace import render_spans
    from hive.runtime.tracing.events import REASONING
    from hive.runtime.tracing.query import SpanNode, TraceTree

    tracing, exporter = spans
    bus = EventBus()
    bus.subscribe(EventSpans(tracing.tracer))
    from hive.runtime.reasoning.thought import ThoughtStep, ThoughtTrace

    step = ThoughtStep(id=0, depth=0, hypothesis="try the sandbox first", confidence=0.9)
    record = ThoughtTrace(goal="q", steps=[step], answer="use gVisor").model_dump(mode="json")
    data = {"outcome": "answered", "answer": "use gVisor", "steps": 1, "record": record}
    await bus.publish(Event(EventKind.THOUGHT_FINISHED, "lead", data))
    (think,) = finished(tracing, exporter)
    assert think.name == "think lead"
    assert "hive.record" not in think.attributes, "the record travels whole, not cut"
    carried = json.loads(think.attributes[REASONING])
    assert carried["answer"] == "use gVisor"
    assert carried["trace"] == record
    node = SpanNode("1", None, think.name, "hive-agent-lead", 0, 10, dict(think.attributes))
    console = Console(record=True, width=200)
    console.print(render_spans(TraceTree("ab" * 16, [node])))
    text = console.export_text()
    assert "think lead" in text
    assert "chain of thought" in text, text
    assert "try the sandbox first" in text, text
