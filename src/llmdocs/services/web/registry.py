"""Services: the registry with each service's recorded health, the llmdocs services'
live health (each dependency with its latency), and a service's operations and the
tools generated from them."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from llmdocs.core.client import ServiceClient, ServiceError
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import SERVICE_NAME
from llmdocs.services.web.pages import PageRoute, User, render, signed_in
from llmdocs.services.web.partial import part, said

router = APIRouter(route_class=PageRoute, include_in_schema=False)
HEALTH_SECONDS = 5.0  # a service slower than this to say how it is counts as down
Name = Annotated[str, Path(pattern=SERVICE_NAME)]


@dataclass(frozen=True)
class Live:
    """One llmdocs service's health as it answered just now."""

    service: str
    status: str  # healthy | degraded | unhealthy | unreachable
    latency_ms: float
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    version: str = ""
    note: str | None = None


async def _live(key: str, client: ServiceClient) -> Live:
    started = time.perf_counter()
    try:
        report = await asyncio.wait_for(client.health(), HEALTH_SECONDS)
    except (ServiceError, TimeoutError) as exc:
        note = said(exc) if isinstance(exc, ServiceError) else "no answer in time"
        return Live(key, "unreachable", _ms(started), note=note)
    return Live(key, str(report.get("status", "unknown")), _ms(started),
                list(report.get("dependencies") or []), str(report.get("version", "")))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


async def live_health(request: Request) -> list[Live]:
    """Every service the portal calls, asked at once (health needs no token)."""
    clients: dict[str, ServiceClient] = request.app.state.clients
    return list(await asyncio.gather(*(_live(key, client)
                                       for key, client in sorted(clients.items()))))


@router.get("/services")
async def services(request: Request, user: User = signed_in) -> Response:
    """The registry, the ecosystem's recorded health, and the live health now."""
    orchestrator = user.client(OrchestratorClient)
    registered, ecosystem, live = await asyncio.gather(
        orchestrator.list_services(), part(orchestrator.ecosystem_health()),
        live_health(request))
    return render(request, "services.html", registered=registered, ecosystem=ecosystem,
                  live=live)


@router.get("/services/{name}")
async def service(request: Request, name: Name, user: User = signed_in) -> Response:
    """One registered service: its operations by tag and the tools made from them."""
    orchestrator = user.client(OrchestratorClient)
    detail = await orchestrator.get_service(name)
    tools = await part(orchestrator.tools("mcp", service=name))
    by_tag: dict[str, list[Any]] = {}
    for op in detail.operations:
        by_tag.setdefault(op.tag, []).append(op)
    return render(request, "service.html", service=detail, by_tag=sorted(by_tag.items()),
                  tools=tools)
