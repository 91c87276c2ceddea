"""Every call an agent makes, as a span and in its Prometheus metrics (call-chain middlewares).

Spans follow the OpenTelemetry GenAI conventions: a model completion is ``chat <model>`` with
``gen_ai.operation.name``, ``gen_ai.request.model`` and the reply's ``gen_ai.usage.input_tokens``
/ ``output_tokens``; a tool call is ``execute_tool <tool>``; a call to a peer agent is
``invoke_agent <peer>`` (a client span: the peer's own spans are its children, through the
``traceparent`` the call carries). Sandbox runs and memory operations get spans of their own.
Prompts, completions and tool results are recorded only with ``record_content`` (the team's
``spec.observability.recordContent``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import context, trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Histogram

from hive.runtime.resilience.calls import Call, CallKind, Proceed

CONTENT_LIMIT = 8192  # characters of one recorded prompt, completion or tool payload

MODEL_LATENCY = Histogram(
    "hive_model_call_seconds",
    "Latency of an agent's model calls (the whole chain: retries, fallbacks).",
    ["agent", "model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
MODEL_TOKENS = Counter(
    "hive_model_tokens_total",
    "Model tokens by agent, model and type (input, output).",
    ["agent", "model", "type"],
)
MODEL_COST = Counter(
    "hive_model_cost_total",
    "Model cost by agent and model, in the pricing's currency (spec.model.pricing).",
    ["agent", "model"],
)
CALLS = Counter(
    "hive_agent_calls_total",
    "Calls an agent made, by kind (model, tool, peer, sandbox, memory), dependency and "
    "outcome (ok, or the error's class).",
    ["agent", "kind", "dependency", "outcome"],
)

CLIENT_KINDS = {CallKind.MODEL: SpanKind.CLIENT, CallKind.PEER: SpanKind.CLIENT}
OPERATION = {
    CallKind.MODEL: gen_ai.GenAiOperationNameValues.CHAT.value,
    CallKind.TOOL: gen_ai.GenAiOperationNameValues.EXECUTE_TOOL.value,
    CallKind.PEER: gen_ai.GenAiOperationNameValues.INVOKE_AGENT.value,
}


def span_name(call: Call) -> str:
    operation = OPERATION.get(call.kind)
    if operation is not None:
        return f"{operation} {call.dependency}"
    return f"{call.kind.value} {call.operation} {call.dependency}".strip()


def _content(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:CONTENT_LIMIT]


class TracedCalls:
    """Middleware: one span per call, a child of the span current where the call is made."""

    def __init__(self, tracer: trace.Tracer, record_content: bool = False) -> None:
        self.tracer = tracer
        self.record_content = record_content
        self.scrub: Callable[[str], str] = str  # what content passes before a span holds it

    def content(self, value: Any) -> str:
        return self.scrub(_content(value))

    def attributes(self, call: Call) -> dict[str, Any]:
        """The span's attributes at its start: few, as each one costs (the calling agent is the
        process's service.name, so spans do not repeat it)."""
        operation = OPERATION.get(call.kind)
        if call.kind is CallKind.MODEL:
            attributes: dict[str, Any] = {
                gen_ai.GEN_AI_OPERATION_NAME: operation,
                gen_ai.GEN_AI_REQUEST_MODEL: call.dependency,
            }
            if self.record_content and call.request is not None:
                messages = call.request.get("messages")
                attributes[gen_ai.GEN_AI_INPUT_MESSAGES] = self.content(messages)
            return attributes
        if call.kind is CallKind.TOOL:
            return {
                gen_ai.GEN_AI_OPERATION_NAME: operation,
                gen_ai.GEN_AI_TOOL_NAME: call.dependency,
            }
        if call.kind is CallKind.PEER:
            return {
                gen_ai.GEN_AI_OPERATION_NAME: operation,
                gen_ai.GEN_AI_AGENT_NAME: call.dependency,
                "hive.peer.operation": call.operation,
            }
        return {
            "hive.call.kind": call.kind.value,
            "hive.call.dependency": call.dependency,
            "hive.call.operation": call.operation,
        }

    def finished(self, span: trace.Span, call: Call, result: Any) -> None:
        if call.kind is CallKind.MODEL:
            usage: dict[str, Any] = {}
            prompt = getattr(result, "prompt_tokens", None)
            completion = getattr(result, "completion_tokens", None)
            if prompt is not None:
                usage[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] = int(prompt)
            if completion is not None:
                usage[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS] = int(completion)
            finish = getattr(result, "finish_reason", None)
            if finish:
                usage[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] = (str(finish),)
            if self.record_content:
                usage[gen_ai.GEN_AI_OUTPUT_MESSAGES] = self.content(
                    {
                        "content": getattr(result, "content", None),
                        "tool_calls": [c.name for c in getattr(result, "tool_calls", [])],
                    }
                )
            span.set_attributes(usage)
        elif call.kind is CallKind.TOOL and self.record_content:
            span.set_attribute(gen_ai.GEN_AI_TOOL_CALL_RESULT, self.content(result))

    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any:
        kind = CLIENT_KINDS.get(call.kind, SpanKind.INTERNAL)
        span = self.tracer.start_span(span_name(call), kind=kind, attributes=self.attributes(call))
        token = context.attach(trace.set_span_in_context(span))
        try:
            result = await proceed()
        except BaseException as exc:
            span.set_attribute(error_attributes.ERROR_TYPE, type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, str(exc)[:500]))
            span.record_exception(exc)
            raise
        else:
            self.finished(span, call, result)
            return result
        finally:
            context.detach(token)
            span.end()


class CallMetrics:
    """Middleware: each call counted by outcome; model calls timed, their tokens and cost
    counted (`pricing`: per 1,000 input and output tokens)."""

    def __init__(self, prompt_per_1k: float = 0.0, completion_per_1k: float = 0.0) -> None:
        self.prompt_per_1k = prompt_per_1k
        self.completion_per_1k = completion_per_1k

    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any:
        started = time.perf_counter()
        try:
            result = await proceed()
        except BaseException as exc:
            CALLS.labels(call.agent, call.kind.value, call.dependency, type(exc).__name__).inc()
            raise
        CALLS.labels(call.agent, call.kind.value, call.dependency, "ok").inc()
        if call.kind is CallKind.MODEL:
            MODEL_LATENCY.labels(call.agent, call.dependency).observe(time.perf_counter() - started)
            prompt = int(getattr(result, "prompt_tokens", 0) or 0)
            completion = int(getattr(result, "completion_tokens", 0) or 0)
            MODEL_TOKENS.labels(call.agent, call.dependency, "input").inc(prompt)
            MODEL_TOKENS.labels(call.agent, call.dependency, "output").inc(completion)
            cost = (prompt * self.prompt_per_1k + completion * self.completion_per_1k) / 1000
            if cost:
                MODEL_COST.labels(call.agent, call.dependency).inc(cost)
        return result
