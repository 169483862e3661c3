"""A span per model call, with the OpenTelemetry GenAI semantic conventions' attributes,
so a trace shows which provider and model answered and what it cost in tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace

from llmdocs.core import tracing
from llmdocs.services.gateway.providers.base import ChatRequest, ChatResult, Delta, Provider

# provider kinds as the conventions name them (their well-known values where one exists)
PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "bedrock": "aws.bedrock",
                  "ollama": "ollama", "local": "llama_cpp"}


@contextmanager
def model_call(provider: Provider, request: ChatRequest) -> Iterator[trace.Span]:
    """The span of one chat call to `provider` (a client span: the model is remote). Not
    made the current span: it has no children, and a streamed call yields inside it."""
    if not tracing.recording():
        yield trace.INVALID_SPAN
        return
    system = PROVIDER_NAMES.get(provider.config.kind, provider.config.kind)
    attributes: dict[str, str | int | float] = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": system,
        "gen_ai.system": system,  # the name before the conventions' 1.37
        "gen_ai.request.model": request.model,
        "gen_ai.request.max_tokens": request.max_tokens, "llmdocs.provider": provider.name}
    if request.temperature is not None:
        attributes["gen_ai.request.temperature"] = request.temperature
    if request.json_schema is not None or request.json_mode:
        attributes["gen_ai.output.type"] = "json"
    span = tracing.tracer().start_span(f"chat {request.model}", kind=trace.SpanKind.CLIENT,
                                       attributes=attributes)
    try:
        yield span
    except Exception as exc:
        span.record_exception(exc)
        span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
        raise
    finally:
        span.end()


def answered(span: trace.Span, request: ChatRequest, result: ChatResult | Delta) -> None:
    if span.is_recording():
        span.set_attributes({
            "gen_ai.response.model": request.model,
            "gen_ai.usage.input_tokens": result.prompt_tokens or 0,
            "gen_ai.usage.output_tokens": result.completion_tokens or 0,
            "gen_ai.response.finish_reasons": [result.finish_reason or "stop"]})
