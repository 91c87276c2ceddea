"""A trace read back from Jaeger's query API (``GET /api/traces/{id}``) as a tree of spans."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from hive.errors import ExternalFailure, Unavailable


class TraceNotFound(ExternalFailure):
    """The backend has no such trace (not exported yet, sampled out, or expired)."""


@dataclass
class SpanNode:
    span_id: str
    parent_id: str | None
    name: str
    service: str
    start_us: int
    duration_us: int
    attributes: dict[str, Any]
    error: str | None = None  # the span's status message (or "error") when it failed
    # the attributes of the process that made the span (its OpenTelemetry resource:
    # service.instance.id, k8s.pod.name, hive.team, ...)
    process: dict[str, Any] = field(default_factory=dict)
    children: list[SpanNode] = field(default_factory=list)

    @property
    def input_tokens(self) -> int | None:
        value = self.attributes.get("gen_ai.usage.input_tokens")
        return int(value) if value is not None else None

    @property
    def output_tokens(self) -> int | None:
        value = self.attributes.get("gen_ai.usage.output_tokens")
        return int(value) if value is not None else None

    def walk(self) -> list[SpanNode]:
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


@dataclass
class TraceTree:
    trace_id: str
    roots: list[SpanNode]

    def spans(self) -> list[SpanNode]:
        return [node for root in self.roots for node in root.walk()]

    @property
    def services(self) -> set[str]:
        return {node.service for node in self.spans()}


def _tag_value(tag: dict[str, Any]) -> Any:
    value = tag.get("value")
    if tag.get("type") == "int64" and isinstance(value, str):
        return int(value)
    return value


def tree_from_jaeger(data: dict[str, Any], trace_id: str) -> TraceTree:
    """The tree of one trace in the JSON of Jaeger's ``/api/traces/{id}``: children under
    their CHILD_OF parent (in start order), spans whose parent is missing as roots."""
    traces = data.get("data") or []
    if not traces:
        raise TraceNotFound(f"trace {trace_id} is not in the tracing backend (yet)")
    raw = traces[0]
    processes = raw.get("processes") or {}
    services = {key: str(process.get("serviceName") or key) for key, process in processes.items()}
    resources = {
        key: {str(t["key"]): _tag_value(t) for t in process.get("tags") or []}
        for key, process in processes.items()
    }
    nodes: dict[str, SpanNode] = {}
    for span in raw.get("spans") or []:
        tags = {str(t["key"]): _tag_value(t) for t in span.get("tags") or []}
        parent = next(
            (r["spanID"] for r in span.get("references") or [] if r.get("refType") == "CHILD_OF"),
            None,
        )
        error = None
        if tags.get("error") is True or tags.get("otel.status_code") == "ERROR":
            error = str(tags.get("otel.status_description") or "error")
        nodes[span["spanID"]] = SpanNode(
            span_id=span["spanID"],
            parent_id=parent,
            name=str(span.get("operationName") or ""),
            service=services.get(span.get("processID"), "?"),
            start_us=int(span.get("startTime") or 0),
            duration_us=int(span.get("duration") or 0),
            attributes=tags,
            error=error,
            process=resources.get(span.get("processID"), {}),
        )
    roots: list[SpanNode] = []
    for node in sorted(nodes.values(), key=lambda n: n.start_us):
        parent = nodes.get(node.parent_id) if node.parent_id else None
        (parent.children if parent is not None else roots).append(node)
    return TraceTree(trace_id, roots)


def fetch_trace(query_url: str, trace_id: str, timeout_s: float = 10.0) -> TraceTree:
    """The trace `trace_id` from the Jaeger query API at `query_url`."""
    url = f"{query_url.rstrip('/')}/api/traces/{trace_id}"
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.TransportError as exc:
        raise Unavailable(f"Jaeger query API at {query_url}: {exc.__class__.__name__}") from exc
    if response.status_code == 404:
        raise TraceNotFound(f"trace {trace_id} is not in the tracing backend at {query_url}")
    if response.status_code >= 400:
        raise ExternalFailure(f"Jaeger query API at {url}: HTTP {response.status_code}")
    return tree_from_jaeger(response.json(), trace_id)
