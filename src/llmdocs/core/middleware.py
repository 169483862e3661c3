"""The request envelope every service shares, as one pure-ASGI middleware: correlation
id, trace context, metrics and one structured log line per request."""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmdocs.core import tracing
from llmdocs.core.errors import Problem, problem_response
from llmdocs.core.ids import random_bytes
from llmdocs.core.metrics import HttpMetrics

CORRELATION_HEADER = "x-correlation-id"
correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)

log = structlog.get_logger("llmdocs.http")
# a route whose path names a person (a privacy request's subject) is logged by its
# template: the log of an erasure must not name whom it erased
PERSONAL = "{subject"
_log_level = logging.getLogger("llmdocs.http")  # asked first: a dropped line costs nothing
_QUIET_PATHS = frozenset({"/health", "/metrics"})
_READ_HEADERS = frozenset({CORRELATION_HEADER.encode(), *tracing.CARRIED_HEADERS})


def new_correlation_id() -> str:
    """32 random hex digits, like a uuid4's hex without building a UUID."""
    return random_bytes(16).hex()


def _clean(value: str | None) -> str | None:
    """Accept a caller's id only if it is short and printable: it goes into every log."""
    if value and len(value) <= 128 and value.isascii() and value.isprintable():
        return value
    return None


class RequestEnvelopeMiddleware:
    def __init__(self, app: ASGIApp, service: str, metrics: HttpMetrics,
                 tracer: trace.Tracer | None = None) -> None:
        self.app = app
        self.service = service
        self.metrics = metrics
        self.tracer = tracer or trace.get_tracer("llmdocs")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # only the headers read here are decoded: the correlation id and trace context
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                   if k in _READ_HEADERS}
        correlation_id = _clean(headers.get(CORRELATION_HEADER)) or new_correlation_id()
        method = scope["method"]
        status = 500
        state = scope.setdefault("state", {})
        state["correlation_id"] = correlation_id
        state["request_started"] = started  # for services that report their own overhead
        token = correlation_id_var.set(correlation_id)
        carried = tracing.carries_context(headers)
        parent = tracing.extract(headers)
        structlog.contextvars.bind_contextvars(
            correlation_id=correlation_id, service=self.service
        )
        self.metrics.in_flight.inc()
        span = self.tracer.start_span(f"{method} {scope['path']}", context=parent,
                                      kind=trace.SpanKind.SERVER)
        # one context for the request: the caller's (baggage too) with our span in it
        ctx_token = otel_context.attach(trace.set_span_in_context(span, parent))

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out = MutableHeaders(scope=message)
                out[CORRELATION_HEADER] = correlation_id
                if carried:  # trace state and baggage go back out too
                    carrier: dict[str, str] = {}
                    tracing.inject(carrier)
                    for key, value in carrier.items():
                        out[key] = value
                else:
                    out["traceparent"] = tracing.traceparent(span.get_span_context())
            await send(message)

        try:
            with tracing.serving(self.tracer):
                await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "<unmatched>")
            if span.is_recording():  # only when an exporter is configured
                span.update_name(f"{method} {route}")
                span.set_attribute("http.status_code", status)
            self.metrics.in_flight.dec()
            self.metrics.observe(method, route, status, elapsed)
            if scope["path"] not in _QUIET_PATHS and _log_level.isEnabledFor(logging.INFO):
                path = route if PERSONAL in route else scope["path"]
                log.info("request", method=method, path=path, status=status,
                         duration_ms=round(elapsed * 1000, 2),
                         trace_id=tracing.current_trace_id())
            span.end()
            structlog.contextvars.unbind_contextvars("correlation_id", "service")
            otel_context.detach(ctx_token)
            correlation_id_var.reset(token)


class BodyLimitMiddleware:
    """Refuses a request body larger than `limit` bytes with a 413 before the service
    reads it into memory: at once by its declared length, or as a chunked one streams
    past it. (Not FastAPI's `max_body_size`: its 413 is text/plain, not problem+json.)"""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _too_large(self) -> Problem:
        return Problem(413, f"The request body is larger than this service's limit of "
                            f"{self.limit} bytes.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > self.limit:
            await problem_response(Request(scope), self._too_large())(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:  # the route's body read answers it (error handlers)
                problem = self._too_large()
                raise HTTPException(problem.status, problem.detail)
            return message

        await self.app(scope, counted, send)
