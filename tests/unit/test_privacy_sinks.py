"""Personal data handled at the sinks: a tool's result on its span and in what the agent gets,
a model's prompt and answer, and log records."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hive.api.privacy import DetectionMode, PrivacySpec
from hive.runtime.models import Reply, ToolCall
from hive.runtime.privacy.guard import Guard
from hive.runtime.privacy.middleware import PrivacyLogFilter
from hive.runtime.privacy.wiring import with_privacy
from hive.runtime.resilience.calls import Call, CallKind, Chain
from hive.runtime.tracing.calls import TracedCalls
from hive.runtime.tracing.setup import tracing_from
from hive.settings import TracingSettings

CARD, EMAIL = "4111 1111 1111 1111", "jane.doe@example.com"


@pytest.fixture
def guard() -> Guard:
    return Guard(PrivacySpec(mode=DetectionMode.FAST), key="sink test key 0123456789")


async def test_a_tool_result_is_scrubbed_for_the_agent_and_on_its_span(guard: Guard) -> None:
    exporter = InMemorySpanExporter()
    tracing = tracing_from(TracingSettings(), "test", exporter=exporter)
    assert tracing is not None
    traced = TracedCalls(tracing.tracer, record_content=True)
    chain = with_privacy(Chain((traced,), "a"), guard)

    async def crm() -> Any:
        return {"customer": f"card {CARD}, mail {EMAIL}"}

    got = await chain.run(Call(CallKind.TOOL, "crm", "call"), crm)
    assert got == {"customer": "card <CREDIT_CARD>, mail <EMAIL_ADDRESS>"}
    assert tracing.flush()
    (span,) = exporter.get_finished_spans()
    recorded = str(span.attributes)
    assert CARD not in recorded
    assert EMAIL not in recorded


async def test_a_prompt_and_an_answer_are_scrubbed(guard: Guard) -> None:
    chain = with_privacy(Chain((), "a"), guard)
    seen: list[Any] = []
    request = {"messages": [{"role": "user", "content": f"charge {CARD}"}], "options": {}}

    async def model() -> Reply:
        seen.append(request["messages"])
        return Reply(content=f"I wrote to {EMAIL}", tool_calls=[], finish_reason="stop")

    reply = await chain.run(Call(CallKind.MODEL, "m", "complete", "a", request), model)
    assert seen == [[{"role": "user", "content": "charge <CREDIT_CARD>"}]]
    assert reply.content == "I wrote to <EMAIL_ADDRESS>"


async def test_tool_arguments_a_model_wrote_are_scrubbed_before_the_tool_gets_them(
    guard: Guard,
) -> None:
    chain = with_privacy(Chain((), "a"), guard)
    asked = ToolCall("c1", "send", {"to": EMAIL, "body": {"lines": [f"card {CARD}"]}})

    async def model() -> Reply:
        return Reply(content=None, tool_calls=[asked], finish_reason="tool_calls")

    request = {"messages": [{"role": "user", "content": "go"}], "options": {}}
    reply = await chain.run(Call(CallKind.MODEL, "m", "complete", "a", request), model)
    (call,) = reply.tool_calls
    assert call.arguments == {"to": "<EMAIL_ADDRESS>", "body": {"lines": ["card <CREDIT_CARD>"]}}
    assert (call.id, call.name) == ("c1", "send")


def test_log_records_are_scrubbed_before_a_handler_writes_them(
    guard: Guard, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("hive.test.privacy")
    log.addFilter(PrivacyLogFilter(guard))
    with caplog.at_level(logging.INFO, logger="hive.test.privacy"):
        log.info("paid with %s by %s", CARD, EMAIL)
    assert caplog.messages == ["paid with <CREDIT_CARD> by <EMAIL_ADDRESS>"]
