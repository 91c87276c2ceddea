"""A tracer provider from `TracingSettings`: spans batched to an OTLP/HTTP endpoint, or none.

Every span passes the provider's `FilteredExporter` on its way out: a team's privacy policy
sets its `transform` (`hive.runtime.privacy.traces`), so what reaches the backend is scrubbed
whichever code made the span."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.semconv._incubating.attributes.k8s_attributes import K8S_POD_NAME
from opentelemetry.semconv.attributes.service_attributes import SERVICE_INSTANCE_ID

from hive.errors import InvalidInput
from hive.runtime.tracing.spans import step_tracer
from hive.settings import TracingSettings

INSTRUMENTATION = "hive"


class FilteredExporter(SpanExporter):
    """`exporter`, each span passed through `transform` first where one is set."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.transform: Callable[[ReadableSpan], ReadableSpan] | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        transform = self.transform
        return self.exporter.export([transform(s) for s in spans] if transform else spans)

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


@dataclass
class Tracing:
    """One process's tracer provider and the tracer Hive's spans come from."""

    provider: TracerProvider
    exporter: FilteredExporter | None = None  # what every span leaves through

    @cached_property
    def tracer(self) -> trace.Tracer:
        """Hive's tracer: lean spans under a sampled parent (`hive.runtime.tracing.spans`)."""
        return step_tracer(self.provider.get_tracer(INSTRUMENTATION))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Export every finished span now; False if the exporter did not finish in time."""
        return self.provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        self.provider.shutdown()


def exporter_for(settings: TracingSettings) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    endpoint = (settings.otlp_endpoint or "").rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise InvalidInput("tracing.otlpEndpoint", f"{endpoint!r} is not an http(s) URL")
    return OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=settings.export_timeout_s)


def process_attributes() -> dict[str, str]:
    """What tells this process's spans from another's of the same service: a fresh
    ``service.instance.id``, and in a Kubernetes pod (whose host name is the pod's name) its
    ``k8s.pod.name``."""
    attributes = {SERVICE_INSTANCE_ID: str(uuid.uuid4())}
    if os.environ.get("KUBERNETES_SERVICE_HOST"):  # the kubelet sets it in every pod
        attributes[K8S_POD_NAME] = socket.gethostname()
    return attributes


def tracing_from(
    settings: TracingSettings,
    part: str,
    exporter: SpanExporter | None = None,
    attributes: dict[str, str] | None = None,
) -> Tracing | None:
    """The provider for one process (`part`: operator, agent, run); None when tracing is off
    (no endpoint and no `exporter`). New traces are kept at `sample_ratio`; a span whose parent
    arrived from a peer follows the parent's decision, so a trace is whole or absent."""
    if exporter is None and settings.otlp_endpoint is None:
        return None
    resource = Resource.create(
        {
            SERVICE_NAME: settings.service_name or f"hive-{part}",
            **process_attributes(),
            **(attributes or {}),
        }
    )
    root: Sampler = (
        ALWAYS_ON if settings.sample_ratio >= 1.0 else TraceIdRatioBased(settings.sample_ratio)
    )
    provider = TracerProvider(resource=resource, sampler=ParentBased(root))
    filtered = FilteredExporter(exporter or exporter_for(settings))
    provider.add_span_processor(BatchSpanProcessor(filtered))
    return Tracing(provider, filtered)


def install(tracing: Tracing | None) -> None:
    """Make `tracing` the process's global provider (what `trace.get_tracer` answers), so code
    without a handle on it (the peer server) joins the same traces. Once per process."""
    if tracing is not None:
        trace.set_tracer_provider(tracing.provider)


def current_tracer() -> trace.Tracer:
    """The process's tracer: a no-op one until `install` ran."""
    return trace.get_tracer(INSTRUMENTATION)


def flush_installed(timeout_s: float = 10.0) -> None:
    """Export the finished spans of the global provider (at a process's orderly end)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush(int(timeout_s * 1000))
