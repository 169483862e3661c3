"""OpenTelemetry tracing: W3C `traceparent` in and out; exporter chosen by settings."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

from llmdocs.core.config import Settings

_configured = False


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


def configure_tracing(settings: Settings, service: str) -> None:
    """Install the process's tracer provider once; without an exporter spans still
    get ids, so `traceparent` flows through the services even when nothing is exported."""
    global _configured
    if _configured:
        return
    _configured = True
    if settings.otel_exporter == "none":
        trace.set_tracer_provider(_IdsOnlyTracerProvider())
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"llmdocs-{service}"}))
    if settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_endpoint or None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    else:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)


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


def traceparent(ctx: trace.SpanContext) -> str:
    """The W3C header for a span: what `inject` writes when there is no trace state
    or baggage to carry along, without going through the propagators."""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


def inject(headers: MutableMapping[str, str]) -> None:
    propagate.inject(headers)


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
