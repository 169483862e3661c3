"""`create_service_app()`: what every service's FastAPI app gets from one place —
health, metrics, auth, problem+json errors, correlation ids, logs and tracing."""

from __future__ import annotations

import asyncio
import pkgutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from itertools import groupby
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.routing import BaseRoute

from llmdocs import __version__
from llmdocs.core.audit import AuditMiddleware, AuditTrail
from llmdocs.core.auth import Principal, is_auth_dependency, require
from llmdocs.core.client import ServiceClient, ServiceError
from llmdocs.core.config import Settings, get_settings
from llmdocs.core.errors import install_error_handlers, unhandled
from llmdocs.core.health import DependencyCheck, health_report
from llmdocs.core.logging import configure_logging
from llmdocs.core.logship import DROPPED as DROPPED_LOGS
from llmdocs.core.logship import shipping_logs
from llmdocs.core.metrics import HttpMetrics
from llmdocs.core.middleware import BodyLimitMiddleware, RequestEnvelopeMiddleware
from llmdocs.core.privacy import held_router, pseudonym
from llmdocs.core.ratelimit import RateLimiter, RateLimitHeadersMiddleware
from llmdocs.core.resources import Resources
from llmdocs.core.service import Hooks, ServiceSpec
from llmdocs.core.tracing import configure_tracing, serving
from llmdocs.core.tracing import flush as flush_spans

Client = TypeVar("Client", bound=ServiceClient)

PUBLIC_PATHS = frozenset({"/health", "/health/live", "/metrics", "/openapi.json", "/docs",
                          "/docs/oauth2-redirect", "/redoc"})


def health_checks(app: FastAPI, resources: Resources, deep: bool) -> list[DependencyCheck]:
    checks = [
        DependencyCheck("database", resources.database.ping, kind="database"),
        DependencyCheck("events", resources.events.ping, kind="events"),
        *app.state.extra_checks,
    ]
    if deep:
        clients: dict[str, ServiceClient] = app.state.clients
        checks += [
            DependencyCheck(key, partial(client.health, deep=False), kind="service")
            for key, client in clients.items()
        ]
    return checks


def _called_clients(spec: ServiceSpec, settings: Settings) -> dict[str, ServiceClient]:
    """One client per called service, built once (in-process when its app runs here),
    each with the timeout its spec declares."""
    clients: dict[str, ServiceClient] = {}
    for call in spec.calls:
        cls = pkgutil.resolve_name(call.client)
        if not (isinstance(cls, type) and issubclass(cls, ServiceClient)):
            raise TypeError(f"{spec.key} calls {call.target} with {call.client}, "
                            "which is no ServiceClient")
        waiting = settings if call.waits_up_to is None else settings.waiting_up_to(
            call.waits_up_to)
        clients[call.target] = cls.for_service(waiting, caller=spec.key, target=call.target)
    return clients


def client_of(app: FastAPI, cls: type[Client]) -> Client:
    """The app's client to `cls.service`, typed; the spec's `calls` declares it."""
    client = app.state.clients[cls.service]
    if not isinstance(client, cls):
        raise TypeError(f"the client to {cls.service} is a {type(client).__name__}")
    return client


def _kernel_router(spec: ServiceSpec) -> APIRouter:
    router = APIRouter()

    @router.get("/health", tags=["kernel"], summary="Health of the service and its dependencies")
    async def health(request: Request, deep: bool = Query(True)) -> JSONResponse:
        app = request.app
        report = await health_report(
            spec.name, __version__, app.state.started_at,
            health_checks(app, app.state.resources, deep),
            app.state.settings.health_timeout_seconds,
        )
        code = 503 if report["status"] == "unhealthy" else 200
        return JSONResponse(report, status_code=code)

    @router.get("/health/live", tags=["kernel"], summary="Liveness: the process answers")
    async def live() -> dict[str, str]:
        # no dependency checks: a database outage must not make an orchestrator restart us
        return {"status": "alive", "service": spec.name}

    @router.get("/metrics", tags=["kernel"], summary="Prometheus metrics",
                response_class=Response)
    async def metrics(request: Request) -> Response:
        data = generate_latest(request.app.state.metrics.registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    @router.get("/info", tags=["kernel"], summary="What this service is and how it runs")
    async def info(
        request: Request, principal: Principal = Depends(require(f"{spec.scope}:read"))
    ) -> dict[str, Any]:
        settings: Settings = request.app.state.settings
        return {
            "service": spec.name, "key": spec.key, "title": spec.title,
            "description": spec.description, "version": __version__,
            "mode": "embedded" if settings.embedded else "distributed",
            "calls": [call.target for call in spec.calls],
            "caller": principal.subject,
        }

    return router


def _include_guarded(app: FastAPI, router: APIRouter) -> None:
    """Every domain route needs a valid token, checked once per request: a route that
    checks scopes already does; the others get a token check of their own."""
    def checked(route: BaseRoute) -> bool:
        return isinstance(route, APIRoute) and any(
            is_auth_dependency(d.call) for d in route.dependant.dependencies)

    # runs of alike routes, in order: matching order stays the router's
    for has_check, routes in groupby(router.routes, key=checked):
        if has_check:
            # straight into the app's list: FastAPI walks an included router twice per
            # request (to match, then to dispatch), a sizeable share of an in-process call
            app.router.routes.extend(routes)
        else:  # per route, not on the whole router: that would check a token twice
            app.include_router(APIRouter(routes=list(routes)),
                               dependencies=[Depends(require())])


def create_service_app(
    spec: ServiceSpec, settings: Settings | None = None, resources: Resources | None = None,
    *, hooks: Hooks,
) -> FastAPI:
    """Build a service's app. With `resources` given (embedded mode) the app shares
    them and leaves their lifecycle to the caller; otherwise it opens its own, migrated
    with `hooks.upgrade`."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    tracer = configure_tracing(settings, spec.key)
    trail = AuditTrail(spec.name, conceal=partial(pseudonym, settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.clients = _called_clients(spec, settings)  # a wrong one fails first
        owned = resources is None
        res = resources or Resources.from_settings(settings, namespace=spec.key)
        if owned:
            await res.open(hooks.upgrade)
        app.state.resources = res
        shipped_as = spec.name if owned else "llmdocs"  # embedded: one shipper for all
        try:
            # announcing never delays or fails the start: it runs in the background
            with serving(tracer):
                async with (shipping_logs(settings, res.events, shipped_as),
                            trail.running(settings, res.events),
                            hooks.announce(settings, spec)):
                    if spec.lifespan is None:
                        yield
                    else:
                        async with spec.lifespan(app):
                            yield
        finally:
            for client in app.state.clients.values():
                await client.aclose()
            await app.state.limiter.aclose()
            if owned:
                await res.close()
            await asyncio.to_thread(flush_spans)

    # FastAPI's own OpenTelemetry instrumentation stays off: the envelope middleware
    # makes the server span and the Prometheus metrics, and FastAPI's would be a second
    # span per request (and it counts any tracer provider, ours too, as configured)
    app = FastAPI(title=f"llmdocs {spec.name}", description=spec.description,
                  version=__version__, lifespan=lifespan,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.settings = settings
    app.state.spec = spec
    app.state.started_at = time.monotonic()
    app.state.metrics = HttpMetrics(spec.name)
    app.state.metrics.registry.register(DROPPED_LOGS)
    app.state.extra_checks = []
    app.state.limiter = RateLimiter.from_settings(settings, spec.key)  # checked by require()
    app.state.memberships = hooks.memberships  # a service may put its own in its lifespan
    install_error_handlers(app)
    app.add_exception_handler(ServiceError, unhandled)  # a called service's, unhandled
    app.router.routes.extend(_kernel_router(spec).routes)  # public or checked already
    if spec.privacy is not None:  # checked already: privacy:admin
        app.router.routes.extend(held_router(spec.key).routes)
    _include_guarded(app, spec.router())
    app.add_middleware(RateLimitHeadersMiddleware)
    if spec.max_body_bytes is not None:  # inside the envelope: the 413 is logged, counted
        app.add_middleware(BodyLimitMiddleware, limit=spec.max_body_bytes)
    if settings.audit_enabled:  # inside the envelope: records carry its correlation id
        app.add_middleware(AuditMiddleware, trail=trail, audited_reads=spec.audited_reads)
    app.add_middleware(RequestEnvelopeMiddleware, service=spec.name, metrics=app.state.metrics,
                       tracer=tracer)
    return app
