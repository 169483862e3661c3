"""The discovery-agent's domain, no HTTP: discover a service into the registry and watch
health. llmdocs' own names are discovered only at their configured addresses, so no user
can register a look-alike that would receive llmdocs' tokens."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Sequence
from datetime import timedelta
from typing import cast
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from llmdocs.core.auth import Principal, delegated_token
from llmdocs.core.client import ServiceError
from llmdocs.core.config import Settings
from llmdocs.core.db import Database, as_utc, escaped, utcnow
from llmdocs.core.events import EventBus, make_event
from llmdocs.core.ids import new_id
from llmdocs.openapi import Analysis, SpecError, Unreachable, analyse, fetch_spec, read_bounded
from llmdocs.services import all_specs, builtin
from llmdocs.services.discovery.errors import ReservedName
from llmdocs.services.discovery.models import DiscoveryRun, HealthChange, HealthState, Lease
from llmdocs.services.discovery.schemas import DiscoveryResult, HealthTransition, WatchedHealth
from llmdocs.services.discovery.settings import DiscoverySettings
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import HealthStatus, ServiceRegistration

log = structlog.get_logger(__name__)
HEALTH_CHANGED = "llmdocs.service.health_changed"
WATCH_LEASE = "health-watch"
_STATUSES = frozenset({"healthy", "degraded", "unhealthy"})
MAX_HEALTH_BYTES = 1024 * 1024  # a health report is small; a larger one is not read
MAX_REASON = 500


def _result(row: DiscoveryRun) -> DiscoveryResult:
    return DiscoveryResult.model_validate({
        **{c: getattr(row, c) for c in ("id", "name", "base_url", "status", "error",
                                          "spec_url", "spec_hash", "operation_count",
                                          "health", "started_at", "finished_at")},
        "warnings": json.loads(row.warnings)})


def _health_of(response: httpx.Response) -> tuple[HealthStatus, str | None]:
    """Status and reason from a health answer: a kernel health report's own status, or
    the HTTP status."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested past the parser
        body = None
    if not isinstance(body, dict):
        body = {}
    status, dependencies = body.get("status"), body.get("dependencies")
    if isinstance(status, str) and status in _STATUSES:  # any JSON may come: a list too
        down = [str(d.get("name")) for d in dependencies if isinstance(d, dict)
                and d.get("status") != "up"] if isinstance(dependencies, list) else []
        reason = f"dependencies not up: {', '.join(down)}" if down else None
        return cast(HealthStatus, status), reason
    if response.status_code < 400:
        return "healthy", None
    return "unhealthy", f"HTTP {response.status_code}"


def _address(url: str) -> tuple[str, str, int | None, str]:
    """A URL's scheme, host, port (the default made explicit) and path: two spellings
    of one address compare equal."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")


class DiscoveryService:
    def __init__(self, settings: Settings, bounds: DiscoverySettings, database: Database,
                 events: EventBus, registry: OrchestratorClient, http: httpx.AsyncClient
                 ) -> None:
        self.settings = settings
        self.bounds = bounds
        self.database = database
        self.events = events
        self.registry = registry
        self.http = http
        self.holder = f"{socket.gethostname()}-{new_id()[-12:]}"

    # --- probing ------------------------------------------------------------------

    async def probe(self, base_url: str, health_path: str | None
                    ) -> tuple[HealthStatus, str | None]:
        """A service's health; one without a health endpoint is healthy if it answers.
        Its reason is storable text, whatever the service sends."""
        status, reason = await self._probe(base_url.rstrip("/") + (health_path or "/"),
                                           health_path is None)
        return status, None if reason is None else escaped(reason, MAX_REASON)

    async def _probe(self, url: str, any_answer: bool) -> tuple[HealthStatus, str | None]:
        # the client's timeout bounds each read; this bounds the whole answer, which a
        # server sending a byte before each read would otherwise hold open for ever
        wait = self.bounds.fetch_timeout_seconds
        try:
            async with asyncio.timeout(wait), self.http.stream("GET", url) as response:
                if any_answer and response.status_code < 500:
                    return "healthy", None
                await read_bounded(response, MAX_HEALTH_BYTES)
        except TimeoutError:
            return "unreachable", f"no whole answer within {wait:g} s"
        # refused, blocked, timed out; or a URL that cannot be requested (a registration
        # from before health paths were checked)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return "unreachable", f"{type(exc).__name__}: {exc}"
        except SpecError as exc:  # larger than a health report
            return "unhealthy", str(exc)
        return _health_of(response)

    # --- discovery ----------------------------------------------------------------

    def _check_reserved(self, name: str, base_url: str) -> None:
        """An llmdocs service's name is discovered only where that service is
        configured: anywhere else it would pass for ours."""
        key = builtin(name)
        if key is not None and _address(base_url) != _address(self.settings.url_for(key)):
            reason = (f"{name!r} is the name of llmdocs' own {key} service, which is at "
                      f"{self.settings.url_for(key)}; give another service another name")
            raise ReservedName(f"base_url is refused: {reason}.",
                               [{"field": "base_url", "message": reason}])

    async def discover(self, name: str, base_url: str, spec_url: str | None = None,
                       caller: Principal | None = None,
                       tool_operations: list[str] | None = None) -> DiscoveryResult:
        """Health, spec, capabilities, registration; any failure is a recorded result.
        `caller` is whom the discovery is for (None: the agent itself): a service that
        is not llmdocs' own is registered for them. `tool_operations` replaces its
        allow-list of MCP tools; None keeps it."""
        started = utcnow()
        base_url = base_url.rstrip("/")
        self._check_reserved(name, base_url)
        run = DiscoveryRun(id=new_id(), name=name, base_url=base_url, status="failed",
                           error=None, warnings="[]", operation_count=0, health="unknown",
                           started_at=started)
        try:
            await self._discover(run, spec_url, caller, tool_operations)
        except (SpecError, ServiceError) as exc:  # its text may quote the spec or the URL
            run.status, run.error = "failed", escaped(str(exc), 2000)
        except Exception as exc:  # whatever a spec does, the agent records it and lives on
            log.exception("discovery crashed", service=name)
            run.status, run.error = "failed", escaped(
                f"the spec could not be analysed: {exc!r}", 2000)
        run.finished_at = utcnow()
        async with self.database.transaction() as session:
            session.add(run)
        log.info("discovery", service=name, status=run.status, error=run.error)
        return _result(run)

    async def _discover(self, run: DiscoveryRun, spec_url: str | None,
                        caller: Principal | None, tool_operations: list[str] | None
                        ) -> None:
        status, reason = await self.probe(run.base_url, "/health")
        health_path: str | None = "/health"
        if status == "unreachable":
            raise Unreachable(f"{run.base_url} is unreachable: {reason}")
        if reason == "HTTP 404":  # no health endpoint: probe the service's root instead
            health_path = None
            status, reason = await self.probe(run.base_url, None)
        run.health = status
        found_at, doc = await fetch_spec(self.http, run.base_url, spec_url, self.bounds)
        # analysing thousands of operations is CPU work: keep the event loop free
        analysis: Analysis = await asyncio.to_thread(analyse, found_at, doc, self.bounds)
        run.spec_url, run.spec_hash = found_at, analysis.spec_hash
        run.operation_count = len(analysis.operations)
        run.warnings = json.dumps([escaped(w, 2000) for w in analysis.warnings])
        ours = builtin(run.name) is not None  # and at its configured address
        # ours, or the agent's own discovery: registered as the agent; else for the caller
        token = None if ours or caller is None or caller.is_service \
            else delegated_token(self.settings, "discovery", caller)
        result = await self.registry.register_service(ServiceRegistration(
            name=run.name, base_url=run.base_url,
            api_prefix=analysis.api_prefix, spec_url=found_at, spec_hash=analysis.spec_hash,
            title=analysis.title, version=analysis.version,
            openapi_version=analysis.openapi_version,
            auth="service_token" if ours else "none", health_path=health_path,
            operations=analysis.operations, tool_operations=tool_operations), token=token)
        run.status = "registered" if result.changed else "unchanged"
        await self.observe(run.name, status, reason)

    def _ecosystem(self) -> dict[str, str]:
        """Every llmdocs service by name, at its configured URL."""
        return {spec.name: self.settings.url_for(spec.key) for spec in all_specs()}

    async def discover_all(self) -> list[DiscoveryResult]:
        """Every llmdocs service at its configured URL, and every service already
        registered (so a changed spec is noticed and re-registered)."""
        targets = self._ecosystem()
        try:
            for known in await self.registry.list_services():
                if builtin(known.name) is None:  # ours are where they are configured
                    targets.setdefault(known.name, known.base_url)
        except ServiceError as exc:
            log.warning("registry unavailable", error=str(exc))
        return list(await asyncio.gather(*(self.discover(name, url)
                                           for name, url in targets.items())))

    async def discover_at_start(self, attempts: int = 6, pause: float = 1.0) -> None:
        """The agent's first look at the ecosystem. Started beside its siblings, it
        retries the services that do not answer yet, with growing pauses."""
        targets = self._ecosystem()
        for _ in range(attempts):
            await asyncio.sleep(pause)
            results = await asyncio.gather(*(self.discover(name, url)
                                             for name, url in targets.items()))
            targets = {r.name: r.base_url for r in results
                       if r.status == "failed" and "unreachable" in (r.error or "")}
            if not targets:
                return
            pause *= 2

    async def runs(self, name: str | None, limit: int) -> list[DiscoveryResult]:
        query = select(DiscoveryRun).order_by(DiscoveryRun.started_at.desc()).limit(limit)
        if name:
            query = query.where(DiscoveryRun.name == name)
        async with self.database.session() as session:
            return [_result(row) for row in await session.scalars(query)]

    # --- health watch -------------------------------------------------------------

    async def observe(self, service: str, status: HealthStatus, reason: str | None
                      ) -> HealthTransition | None:
        """Record a probe's finding; on a change of status keep it in the history,
        announce it as an event and tell the registry."""
        now = utcnow()
        async with self.database.transaction() as session:
            state = await session.get(HealthState, service, with_for_update=True)
            before: HealthStatus = "unknown" if state is None else state.status  # type: ignore[assignment]
            if state is None:
                state = HealthState(service=service, status=status, reason=reason,
                                    changed_at=now, checked_at=now)
                session.add(state)
            state.checked_at, state.reason = now, reason
            change = None
            if before != status:
                state.status, state.changed_at = status, now
                change = HealthTransition(service=service, from_status=before,
                                          to_status=status, reason=reason, at=now)
                session.add(HealthChange(id=new_id(), service=service, from_status=before,
                                         to_status=status, reason=reason, at=now))
        if change is not None:
            await self.events.publish(make_event(
                "discovery", HEALTH_CHANGED,
                change.model_dump(mode="json", exclude={"at"}), subject=service))
        try:
            await self.registry.set_health(service, status, reason)
        except ServiceError as exc:
            log.warning("registry health update failed", service=service, error=str(exc))
        return change

    async def _lead(self) -> bool:
        """Whether this replica holds the watch lease (taking or renewing it): only
        one replica polls, so each change is announced once."""
        now = utcnow()
        expires = now + timedelta(seconds=max(self.bounds.watch_interval_seconds, 1) * 3)
        try:
            async with self.database.transaction() as session:
                lease = await session.get(Lease, WATCH_LEASE, with_for_update=True)
                if lease is None:
                    session.add(Lease(name=WATCH_LEASE, holder=self.holder,
                                      expires_at=expires))
                    return True
                if lease.holder != self.holder and as_utc(lease.expires_at) > now:
                    return False
                lease.holder, lease.expires_at = self.holder, expires
                return True
        except IntegrityError:  # another replica took it first
            return False

    async def poll(self, *, force: bool = False) -> list[HealthTransition]:
        """Probe every registered service once; returns the changes found."""
        if not force and not await self._lead():
            return []
        services = await self.registry.list_services()
        gate = asyncio.Semaphore(self.bounds.watch_concurrency)

        async def one(name: str, base_url: str, path: str | None) -> HealthTransition | None:
            async with gate:
                try:
                    status, reason = await self.probe(base_url, path)
                    return await self.observe(name, status, reason)
                except Exception:  # one bad registration does not fail the others' round
                    log.exception("health probe failed", service=name)
                    return None

        changes = await asyncio.gather(*(one(s.name, s.base_url, s.health_path)
                                         for s in services))
        return [c for c in changes if c is not None]

    async def watch(self) -> None:
        """The poll loop of the lifespan; a failed round is logged, not fatal."""
        while True:
            try:
                await self.poll()
            except Exception as exc:
                log.warning("health watch round failed", error=repr(exc))
            await asyncio.sleep(self.bounds.watch_interval_seconds)

    async def history(self, service: str | None, limit: int) -> list[HealthTransition]:
        query = select(HealthChange).order_by(HealthChange.id.desc()).limit(limit)
        if service:
            query = query.where(HealthChange.service == service)
        async with self.database.session() as session:
            rows: Sequence[HealthChange] = (await session.scalars(query)).all()
        return [HealthTransition.model_validate(
            {"service": r.service, "from": r.from_status, "to": r.to_status,
             "reason": r.reason, "at": r.at}) for r in rows]

    async def states(self) -> list[WatchedHealth]:
        async with self.database.session() as session:
            rows = await session.scalars(select(HealthState).order_by(HealthState.service))
            return [WatchedHealth.model_validate(row, from_attributes=True) for row in rows]

