"""A team's policy at the traces boundary with a real Jaeger: a task's email and card on the
spans an agent makes (a delegation event, a failure, recorded tool content) reach the backend
scrubbed, as the query API returns them."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from hive.api.privacy import DetectionMode, PrivacySpec
from hive.dev.tracing import DevJaeger
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.privacy.guard import Guard
from hive.runtime.privacy.traces import scrub_exports
from hive.runtime.resilience.calls import Call, CallKind, Chain
from hive.runtime.tracing.calls import TracedCalls
from hive.runtime.tracing.events import EventSpans
from hive.runtime.tracing.runs import trace_id_of
from hive.runtime.tracing.setup import tracing_from
from hive.settings import TracingSettings

pytestmark = pytest.mark.integration
CARD, EMAIL = "4111 1111 1111 1111", "jane.doe@example.com"
TASK = f"Refund card {CARD} and mail {EMAIL}"


def stored_trace(jaeger: DevJaeger, trace_id: str, spans: int, timeout_s: float = 30.0) -> str:
    """The trace as the query API returns it (raw JSON text), once it holds `spans` spans."""
    url = f"{jaeger.query_url}/api/traces/{trace_id}"
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.get(url, timeout=10.0)
        if response.status_code == 200:
            data = response.json()["data"]
            if data and len(data[0]["spans"]) >= spans:
                return response.text
        assert time.monotonic() < deadline, f"trace {trace_id} not whole in Jaeger: {response}"
        time.sleep(0.2)


async def test_no_raw_email_or_card_from_a_task_reaches_the_tracing_backend(
    jaeger: DevJaeger,
) -> None:
    settings = TracingSettings(
        otlp_endpoint=jaeger.otlp_endpoint, service_name=f"privacy-{uuid.uuid4().hex[:8]}"
    )
    tracing = tracing_from(settings, "agent")
    assert tracing is not None
    guard = Guard(PrivacySpec(mode=DetectionMode.FAST), key="jaeger test key 0123456789")
    scrub_exports(tracing, guard)
    bus = EventBus()
    bus.subscribe(EventSpans(tracing.tracer))
    chain = Chain((TracedCalls(tracing.tracer, record_content=True),), "clerk")

    async def crm() -> Any:
        return {"customer": TASK}

    try:
        with tracing.tracer.start_as_current_span("invoke_workflow shop") as root:
            trace_id = trace_id_of(root)
            await bus.publish(Event(EventKind.DELEGATED, "lead", {"to": "clerk", "task": TASK}))
            await chain.run(Call(CallKind.TOOL, "crm", "call"), crm)
            await bus.publish(Event(EventKind.FAILED, "clerk", {"error": f"no {EMAIL}"}))
        assert tracing.flush()
    finally:
        tracing.shutdown()
    assert trace_id is not None
    stored = stored_trace(jaeger, trace_id, spans=4)
    assert EMAIL not in stored
    assert CARD not in stored
    assert (
        "Refund card \\u003cCREDIT_CARD\\u003e" in stored or "Refund card <CREDIT_CARD>" in stored
    )
