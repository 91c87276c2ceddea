"""The W3C trace context on peer calls: the caller injects ``traceparent`` into the request's
headers, the peer's server continues the trace in a span of its own, so one team run across
pods is one trace."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hive.runtime.tracing.setup import current_tracer

PROPAGATOR = TraceContextTextMapPropagator()


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current span's ``traceparent`` (and ``tracestate``) to `headers`; nothing when
    no span is current."""
    PROPAGATOR.inject(headers)


@contextmanager
def serving(headers: Mapping[str, str], agent: str, operation: str) -> Iterator[trace.Span]:
    """A server span ``invoke_agent <agent>`` for one peer request, the child of the caller's
    span its ``traceparent`` names (a new trace without one); current while the request runs."""
    context = PROPAGATOR.extract({k.lower(): v for k, v in headers.items()})
    with current_tracer().start_as_current_span(
        f"{gen_ai.GenAiOperationNameValues.INVOKE_AGENT.value} {agent}",
        context=context,
        kind=SpanKind.SERVER,
        attributes={
            gen_ai.GEN_AI_OPERATION_NAME: gen_ai.GenAiOperationNameValues.INVOKE_AGENT.value,
            gen_ai.GEN_AI_AGENT_NAME: agent,
            "hive.agent": agent,
            "hive.peer.operation": operation,
        },
    ) as span:
        yield span
