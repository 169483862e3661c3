"""OpenTelemetry tracing: W3C `traceparent` in and out; exporter chosen by settings."""

from __future__ import annotations

from collections.abc import MutableMapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from llmdocs.core.config import Settings

_configured = False


def configure_tracing(settings: Settings, service: str) -> None:
    """Install the process's tracer provider once; without an exporter spans still
    get ids, so `traceparent` flows through the services even when nothing is exported."""
    global _configured
    if _configured:
        return
    _configured = True
    provider = TracerProvider(resource=Resource.create({"service.name": f"llmdocs-{service}"}))
    if settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_endpoint or None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    elif settings.otel_exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)


def extract(headers: MutableMapping[str, str]) -> Context:
    return propagate.extract(headers)


def inject(headers: MutableMapping[str, str]) -> None:
    propagate.inject(headers)


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
