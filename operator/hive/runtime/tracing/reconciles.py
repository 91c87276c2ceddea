"""The operator's reconciles as spans, each naming the object it reconciled."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context

from hive.runtime.tracing.setup import current_tracer


@contextmanager
def reconcile_span(kind: str, namespace: str, name: str) -> Iterator[trace.Span]:
    """A root span ``reconcile <kind>`` (each reconcile is a trace of its own) with the object's
    kind, namespace and name (``k8s.namespace.name``, ``hive.object.kind``/``name``); an error
    when the reconcile raises. No-op until the operator installed a tracer provider."""
    with current_tracer().start_as_current_span(
        f"reconcile {kind}",
        context=Context(),
        attributes={
            "k8s.namespace.name": namespace,
            "hive.object.kind": kind,
            "hive.object.name": name,
        },
    ) as span:
        yield span
