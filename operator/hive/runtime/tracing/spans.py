"""Lean spans for the spans an agent makes on every step: its calls and its team's events.

The SDK's span costs an agent step most of its tracing time: a sampler consulted twice over, a
lock, every attribute value checked against the ABCs of `Sequence` and `Mapping`, and a
read-only copy made at its end. `StepTracer` makes the same span more cheaply where the SDK's
decision is already known: under a recorded (sampled) parent, `ParentBased` sampling keeps the
child, so the span is started with the parent's trace id and flags and a fresh span id from the
provider's id generator, records into plain containers, and is handed to the provider's span
processors at its end as the `ReadableSpan` it already is. Anything else (a root span, an
unsampled parent, links) goes to the SDK's tracer, as do spans of anyone else's tracer.

Attribute values are the primitives (and tuples of them) Hive's own spans set; anything else is
made a string, as the SDK does. There is no attribute limit beyond the few each of these spans
carries.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from time import time_ns
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
)
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util import types

UNSET = Status(StatusCode.UNSET)
PRIMITIVE = (str, bool, int, float)


def _clean(value: Any) -> Any:
    if isinstance(value, PRIMITIVE):
        return value
    if isinstance(value, list | tuple):
        return tuple(v if isinstance(v, PRIMITIVE) else str(v) for v in value)
    return str(value)


class StepSpan(ReadableSpan, trace.Span):
    """A recording span that is its own finished, exportable form."""

    def __init__(
        self,
        tracer: StepTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext,
        kind: SpanKind,
        attributes: types.Attributes,
    ) -> None:
        # ReadableSpan's fields, set directly: its __init__ would build a Resource per span
        self._name = name
        self._context = context
        self._span_context = context
        self._parent = parent
        self._kind = kind
        self._attributes: dict[str, Any] = (
            {k: _clean(v) for k, v in attributes.items()} if attributes else {}
        )
        self._events: list[Event] = []
        self._links: list[Link] = []
        self._resource = tracer.resource
        self._status = UNSET
        self._instrumentation_scope = tracer.scope
        self._instrumentation_info = tracer.sdk.instrumentation_info
        self._end_time: int | None = None
        self._tracer = tracer
        self._start_time = time_ns()

    def get_span_context(self) -> SpanContext:
        return self._span_context

    def is_recording(self) -> bool:
        return self._end_time is None

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is None:
            self._end_time = end_time if end_time is not None else time_ns()
            self._tracer.sdk.span_processor.on_end(self)

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if self._end_time is None:
            self._attributes[key] = _clean(value)

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        if self._end_time is None:
            for key, value in attributes.items():
                self._attributes[key] = _clean(value)

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is None:
            cleaned = {k: _clean(v) for k, v in (attributes or {}).items()}
            self._events.append(Event(name, cleaned, timestamp or time_ns()))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self._end_time is None and context.is_valid:
            self._links.append(Link(context, attributes))

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """As the SDK's: OK is final, UNSET changes nothing."""
        new = status if isinstance(status, Status) else Status(status, description)
        if self._end_time is not None or new.status_code is StatusCode.UNSET:
            return
        if self._status.status_code is not StatusCode.OK:
            self._status = new

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        kind = type(exception)
        module = kind.__module__
        recorded: dict[str, Any] = {
            EXCEPTION_TYPE: kind.__qualname__
            if module in ("builtins", "")
            else f"{module}.{kind.__qualname__}",
            EXCEPTION_MESSAGE: str(exception),
            EXCEPTION_STACKTRACE: "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
            **(attributes or {}),
        }
        self.add_event("exception", recorded, timestamp)


class StepTracer(trace.Tracer):
    """The SDK's tracer, with `StepSpan`s under a sampled parent (see the module's docstring)."""

    def __init__(self, sdk: SdkTracer) -> None:
        self.sdk = sdk
        self.resource = sdk.resource
        info = sdk.instrumentation_info
        self.scope = InstrumentationScope(info.name, info.version, info.schema_url)

    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        if not parent.is_valid or not parent.trace_flags.sampled or links or start_time:
            return self.sdk.start_span(
                name,
                context,
                kind,
                attributes,
                links,
                start_time,
                record_exception,
                set_status_on_exception,
            )
        span_context = SpanContext(
            parent.trace_id,
            self.sdk.id_generator.generate_span_id(),
            is_remote=False,
            trace_flags=parent.trace_flags,
            trace_state=parent.trace_state,
        )
        span = StepSpan(self, name, span_context, parent, kind, attributes)
        # the processors are typed for the SDK's span; they use the API both spans implement
        self.sdk.span_processor.on_start(span, parent_context=context)  # type: ignore[arg-type]
        return span

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time, record_exception)
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


def step_tracer(tracer: trace.Tracer) -> trace.Tracer:
    """`tracer` with lean spans when it is the SDK's; any other tracer as it is."""
    if isinstance(tracer, SdkTracer):
        return StepTracer(tracer)
    return tracer
