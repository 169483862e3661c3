"""OpenTelemetry tracing: W3C `traceparent` in and out; exporter chosen by settings."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.util.types import Attributes

from llmdocs.core.config import Settings


class _IdsOnlyTracer(trace.NoOpTracer):
    """Spans that carry ids and record nothing: a new span id under the caller's trace
    (or a new trace), so `traceparent` flows for the price of two random numbers."""

    _ids = RandomIdGenerator()

    def start_span(self, name: str, context: Context | None = None, *args: Any,
                   **kwargs: Any) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, flags, state = parent.trace_id, parent.trace_flags, parent.trace_state
        else:
            trace_id = self._ids.generate_trace_id()
            flags, state = trace.TraceFlags(trace.TraceFlags.SAMPLED), None
        return trace.NonRecordingSpan(trace.SpanContext(
            trace_id, self._ids.generate_span_id(), False, flags, state))


class _IdsOnlyTracerProvider(trace.NoOpTracerProvider):
    """Without an exporter nothing reads the spans, so none are recorded; being a
    no-op provider also tells FastAPI's built-in telemetry to stay out of the way."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _IdsOnlyTracer()


_providers: dict[tuple[str, str, str], trace.TracerProvider] = {}
_exports: dict[tuple[str, str], SpanProcessor] = {}
# the tracer of the service whose request (or lifespan) this is: one process may host
# several services, and each span names its own
_service_tracer: ContextVar[trace.Tracer | None] = ContextVar("service_tracer", default=None)


def _export(settings: Settings) -> SpanProcessor:
    """One exporter per destination, shared by the services of a process."""
    key = (settings.otel_exporter, settings.otel_endpoint)
    if key not in _exports:
        if settings.otel_exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )

            exporter: SpanExporter = OTLPSpanExporter(endpoint=settings.otel_endpoint or None)
        else:
            exporter = ConsoleSpanExporter()
        _exports[key] = BatchSpanProcessor(exporter)
    return _exports[key]


def configure_tracing(settings: Settings, service: str) -> trace.Tracer:
    """The service's tracer, its provider made once per service and exporter. Without
    an exporter spans still get ids, so `traceparent` flows through the services even
    when nothing is exported. The process's global provider is the first one made."""
    key = (service, settings.otel_exporter, settings.otel_endpoint)
    provider = _providers.get(key)
    if provider is None:
        if settings.otel_exporter == "none":
            provider = _IdsOnlyTracerProvider()
        else:
            sdk = TracerProvider(resource=Resource.create(
                {"service.name": f"llmdocs-{service}"}))
            sdk.add_span_processor(_export(settings))
            provider = sdk
        _providers[key] = provider
        if len(_providers) == 1:
            trace.set_tracer_provider(provider)
    return provider.get_tracer("llmdocs")


def flush() -> None:
    """Export the spans still waiting (blocks: a stopping service's last spans)."""
    for processor in _exports.values():
        processor.force_flush()


@contextmanager
def serving(tracer: trace.Tracer) -> Iterator[None]:
    """Spans started inside (and in tasks started inside) are this service's."""
    token = _service_tracer.set(tracer)
    try:
        yield
    finally:
        _service_tracer.reset(token)


def tracer() -> trace.Tracer:
    return _service_tracer.get() or trace.get_tracer("llmdocs")


def recording(within_trace: bool = False) -> bool:
    """Whether spans are exported (without an exporter, spans of detail are skipped);
    `within_trace`: and there is a trace to add to (a poll of a background loop is none)."""
    if isinstance(tracer(), _IdsOnlyTracer):
        return False
    return not within_trace or trace.get_current_span().get_span_context().is_valid


@contextmanager
def span(name: str, kind: trace.SpanKind = trace.SpanKind.INTERNAL,
         attributes: Attributes = None, *, within_trace: bool = False
         ) -> Iterator[trace.Span]:
    """A span of detail (a call, a step, a query) as the current one; when nothing is
    exported, none (the request's own span carries the ids)."""
    if not recording(within_trace):
        yield trace.INVALID_SPAN
        return
    with tracer().start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current


def http_span(method: str, url: str, host: str, port: int | None,
              peer: str | None = None) -> AbstractContextManager[trace.Span]:
    """A client span for an outgoing HTTP call (`url` without its query, which may
    carry secrets); `peer` names an llmdocs service."""
    attributes: dict[str, str | int] = {"http.request.method": method, "url.full": url,
                                        "server.address": host}
    if port is not None:
        attributes["server.port"] = port
    if peer is not None:
        attributes["peer.service"] = peer
    return span(f"{method} {peer or host}", trace.SpanKind.CLIENT, attributes,
                within_trace=True)


def answered(current: trace.Span, status: int) -> None:
    if current.is_recording():
        current.set_attribute("http.response.status_code", status)
        if status >= 400:
            current.set_status(trace.StatusCode.ERROR)


_CARRIED = ("traceparent", "tracestate", "baggage")
CARRIED_HEADERS = tuple(name.encode() for name in _CARRIED)  # as ASGI spells them


def carries_context(headers: MutableMapping[str, str]) -> bool:
    return any(name in headers for name in _CARRIED)


def extract(headers: MutableMapping[str, str]) -> Context:
    """The caller's trace context; a request that carries none (most direct calls)
    skips the propagators and starts a new trace."""
    if not carries_context(headers):
        return Context()
    return propagate.extract(headers)


@contextmanager
def continuing(traceparent: str | None) -> Iterator[None]:
    """Work done for a message (an event) inside the trace that sent it, as a request
    is inside its caller's: what it calls then belongs to that trace too."""
    token = context.attach(extract({"traceparent": traceparent} if traceparent else {}))
    try:
        yield
    finally:
        context.detach(token)


def traceparent(ctx: trace.SpanContext) -> str:
    """The W3C header for a span: what `inject` writes when there is no trace state
    or baggage to carry along, without going through the propagators."""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


def inject(headers: MutableMapping[str, str]) -> None:
    propagate.inject(headers)


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
