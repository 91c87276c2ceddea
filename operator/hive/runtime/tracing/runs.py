"""One team run, one trace: the root span the coordinator opens around the team's work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

WORKFLOW = gen_ai.GenAiOperationNameValues.INVOKE_WORKFLOW.value


def trace_id_of(span: trace.Span) -> str | None:
    """The span's trace id as Jaeger shows it (32 hex digits); None for a span not recorded."""
    context = span.get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return format(context.trace_id, "032x")


@contextmanager
def run_span(
    tracer: trace.Tracer, team: str, namespace: str, coordinator: str, generation: int | None
) -> Iterator[trace.Span]:
    """The run's root span ``invoke_workflow <team>`` (a new trace), current while the team
    works: every delegation, model call and peer request of the run (in any pod) descends
    from it."""
    attributes: dict[str, str | int] = {
        gen_ai.GEN_AI_OPERATION_NAME: WORKFLOW,
        "hive.team": team,
        "hive.namespace": namespace,
        "hive.coordinator": coordinator,
    }
    if generation is not None:
        attributes["hive.generation"] = generation
    with tracer.start_as_current_span(
        f"{WORKFLOW} {team}", context=Context(), attributes=attributes
    ) as span:
        yield span
