"""The audit trail's kernel half: every state-changing request, read of a guarded
record, denied request and administrative action of every service becomes an audit
record, published in batches through the event bus (which spools them while it is down)
for the log-collector to chain and keep. No database write on the request path."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmdocs.core.config import Settings
from llmdocs.core.db import escaped
from llmdocs.core.events import Event, EventBus
from llmdocs.core.ids import new_id

AUDIT_RECORDED = "llmdocs.audit.recorded"  # one event per batch: data.records
BATCH_RECORDS = 200  # a batch is published when this many records wait...
FLUSH_SECONDS = 0.2  # ...or this long after the first one
READS = frozenset({"GET", "HEAD", "OPTIONS"})
DENIED = frozenset({401, 403})
# kernel routes nobody needs an audit record of (a denied call to one is still kept)
UNAUDITED = frozenset({"/health", "/health/live", "/metrics", "/openapi.json", "/docs",
                       "/docs/oauth2-redirect", "/redoc"})
_DEFAULT_VERBS = {"GET": "read", "HEAD": "read", "POST": "create", "PUT": "update",
                  "PATCH": "update", "DELETE": "delete"}
log = logging.getLogger("llmdocs.events.audit")  # the bus's family: never shipped as logs
# the state of the request being audited: a store learns a record's space where it loads
# it, deep below the route, with no request at hand (`touched` leaves it there)
_request_state: ContextVar[dict[str, Any] | None] = ContextVar("audit_request_state",
                                                               default=None)


def audit_stream(settings: Settings) -> str:
    """Audit records have a stream of their own, as logs do: other consumers skip them."""
    return f"{settings.events_stream}.audit"


def is_admin_scope(scope: str) -> bool:
    """Whether holding `scope` marks a route as administrative (or as the audit's own)."""
    return scope == "*" or scope.endswith(":admin") or scope == "logs:audit"


def _scopes(dependant: Dependant) -> set[str]:
    """Every scope a route's security dependencies (ours: `require`) ask for."""
    found = set(dependant.own_oauth_scopes or ())
    for sub in dependant.dependencies:
        found |= _scopes(sub)
    return found


def _admin_route(route: APIRoute) -> bool:
    return any(is_admin_scope(scope) for scope in _scopes(route.dependant))


def _segments(template: str) -> list[str]:
    return [part for part in template.split("/") if part]


def verb_of(method: str, template: str) -> tuple[str, str]:
    """(resource type, verb) a route template names: `GET /documents/{document_id}` →
    (`document`, `document.read`); a literal after a parameter is the verb itself
    (`POST /documents/{document_id}/restore` → `document.restore`)."""
    parts = _segments(template)
    # an API prefix (`/api/v1`) names no resource
    literal = [p for p in parts if not p.startswith("{") and p != "api"
               and not re.fullmatch(r"v\d+", p)]
    kind = (literal[0] if literal else "service").removesuffix("s").replace("-", "_")
    action = _DEFAULT_VERBS.get(method, method.lower())
    if len(parts) >= 2 and not parts[-1].startswith("{") and any(
            p.startswith("{") for p in parts[:-1]):
        action = parts[-1].replace("-", "_")
    return kind, f"{kind}.{action}"


def _act_chain(claims: dict[str, Any]) -> list[str]:
    """The services a token passed through (RFC 8693 `act`, nested), nearest first."""
    chain: list[str] = []
    act = claims.get("act")
    while isinstance(act, dict) and "sub" in act and len(chain) < 10:
        chain.append(escaped(str(act["sub"]), 200))
        act = act.get("act")
    return chain


def _space(scope: Scope, params: dict[str, Any]) -> str | None:
    """The space a request is about, when it names one (spaces fill `state.space`)."""
    state = scope.get("state") or {}
    found = state.get("space") or params.get("space") or params.get("space_id")
    if found is None and b"space=" in scope.get("query_string", b""):
        found = (parse_qs(scope["query_string"].decode("latin-1")).get("space") or [None])[0]
    return escaped(str(found), 200) if found is not None else None


def touched(space: str | None) -> None:
    """Name the space of the record the current request reads or changes, for its audit
    record (as `request.state.space`); the first one named, the record the path names,
    is kept, not a related one loaded after it."""
    state = _request_state.get()
    if state is not None and space is not None:
        state.setdefault("space", space)


def audit_record(service: str, scope: Scope, status: int, template: str,
                 conceal: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The record of one request, as the log-collector's `AuditIn` takes it; a person
    the path names (`{subject}`: a privacy request) is named by `conceal` (a pseudonym)."""
    method = scope["method"]
    state = scope.get("state") or {}
    params = {k: conceal(str(v)) if k == "subject" and conceal else str(v)
              for k, v in (scope.get("path_params") or {}).items()}
    kind, verb = verb_of(method, template)
    principal = state.get("principal")
    subject = roles = None
    act: list[str] = []
    if principal is not None:
        # a role name comes from a token as it is: cut to what the record holds
        subject, roles = principal.subject, sorted(escaped(r, 200) for r in principal.roles)
        act = _act_chain(principal.claims)
    client = scope.get("client")
    return {
        "id": new_id(), "time": datetime.now(UTC).isoformat(), "service": service,
        "actor": subject, "actor_kind": None if subject is None else (
            "service" if subject.startswith("service:") else "user"),
        "roles": (roles or [])[:100], "act": act, "client": client[0] if client else None,
        "method": method, "route": template[:500], "action": verb[:200],
        "resource_type": kind[:100],
        "resource_id": escaped("/".join(params.values()), 500) or None,
        "space": _space(scope, params), "outcome": status,
        "correlation_id": state.get("correlation_id"),
    }


class AuditTrail:
    """A service's outgoing audit records: queued by the middleware, published in
    batches by a task, so the request only appends to a list. Nothing is dropped: the
    bus spools what it cannot send, and stopping publishes what is queued."""

    def __init__(self, service: str, conceal: Callable[[str], str] | None = None) -> None:
        self.service = service
        self.conceal = conceal
        self.queue: list[dict[str, Any]] = []
        self._bus: EventBus | None = None
        self._stream = ""
        self._ready = asyncio.Event()

    def record(self, record: dict[str, Any]) -> None:
        self.queue.append(record)
        if len(self.queue) == 1 or len(self.queue) >= BATCH_RECORDS:
            self._ready.set()

    @asynccontextmanager
    async def running(self, settings: Settings, bus: EventBus) -> AsyncIterator[None]:
        """Publish records while the app runs; what is left goes out at the end."""
        self._bus, self._stream = bus, audit_stream(settings)
        if self.queue:  # recorded before the bus was ready
            self._ready.set()
        task = asyncio.create_task(self._run(), name=f"audit:{self.service}")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self.flush()

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            if len(self.queue) < BATCH_RECORDS:  # gather a burst into one event
                await asyncio.sleep(FLUSH_SECONDS)
            self._ready.clear()
            await self.flush()

    async def flush(self) -> None:
        """Publish every queued record; the bus spools them while its backend is down."""
        while self.queue and self._bus is not None:
            batch, self.queue = self.queue[:BATCH_RECORDS], self.queue[BATCH_RECORDS:]
            try:
                await self._bus.publish(Event(source=f"llmdocs/{self.service}",
                                              type=AUDIT_RECORDED, data={"records": batch}),
                                        self._stream)
            except Exception:  # publish spools; this is a full disk: keep them for later
                self.queue[:0] = batch
                log.exception("audit batch not published; kept for the next try")
                return


class AuditMiddleware:
    """Records the requests the audit trail keeps, after their response is sent."""

    def __init__(self, app: ASGIApp, trail: AuditTrail,
                 audited_reads: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.trail = trail
        self.audited_reads = audited_reads
        self._admin: dict[int, bool] = {}  # by id(route): routes live as long as the app

    def _audited(self, method: str, route: Any, template: str, status: int) -> bool:
        if status in DENIED:
            return True
        if template in UNAUDITED or route is None:
            return False
        if method not in READS or template in self.audited_reads:
            return True
        admin = self._admin.get(id(route))
        if admin is None:
            admin = self._admin[id(route)] = (isinstance(route, APIRoute)
                                              and _admin_route(route))
        return admin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        reset = _request_state.set(scope.setdefault("state", {}))
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            _request_state.reset(reset)
            route = scope.get("route")
            template = getattr(route, "path", None) or scope["path"]
            if self._audited(scope["method"], route, template, status):
                self.trail.record(audit_record(self.trail.service, scope, status, template,
                                               self.trail.conceal))
