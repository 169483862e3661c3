"""HTTP routes of the discovery-agent. Routes parse, call service.py and shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from llmdocs.core.auth import Principal, require
from llmdocs.core.errors import domain_problems
from llmdocs.services.discovery.errors import ReservedName
from llmdocs.services.discovery.schemas import (
    DiscoverRequest,
    DiscoveryResult,
    HealthTransition,
    WatchedHealth,
)
from llmdocs.services.discovery.service import DiscoveryService
from llmdocs.services.orchestrator.schemas import SERVICE_NAME

router = APIRouter(tags=["discovery-agent"],
                   dependencies=[Depends(domain_problems({ReservedName: 422}))])
_write = require("services:write")
READ = [Depends(require("services:read"))]
WRITE = [Depends(_write)]
Writer = Annotated[Principal, Depends(_write)]


async def discovery(request: Request) -> DiscoveryService:
    service: DiscoveryService = request.app.state.discovery
    return service


@router.post("/discover",
             summary="Discover one service: health, OpenAPI spec, capabilities, "
             "registration (for the caller; llmdocs' own names only at their address)")
async def discover(body: DiscoverRequest, caller: Writer,
                   svc: DiscoveryService = Depends(discovery)) -> DiscoveryResult:
    return await svc.discover(body.name, str(body.base_url), body.spec_url, caller,
                              body.tool_operations)


@router.post("/discover/all", dependencies=WRITE,
             summary="Discover every llmdocs service and every registered one again")
async def discover_all(svc: DiscoveryService = Depends(discovery)) -> list[DiscoveryResult]:
    return await svc.discover_all()


@router.get("/discoveries", dependencies=READ, summary="Past discoveries, newest first")
async def discoveries(
    name: str | None = Query(None, pattern=SERVICE_NAME),
    limit: int = Query(50, ge=1, le=1000),
    svc: DiscoveryService = Depends(discovery),
) -> list[DiscoveryResult]:
    return await svc.runs(name, limit)


@router.post("/watch/poll", dependencies=WRITE,
             summary="Probe every registered service now; returns the changes found")
async def poll(svc: DiscoveryService = Depends(discovery)) -> list[HealthTransition]:
    return await svc.poll(force=True)


@router.get("/watch/status", dependencies=READ,
            summary="Each watched service's last known health")
async def status(svc: DiscoveryService = Depends(discovery)) -> list[WatchedHealth]:
    return await svc.states()


@router.get("/watch/history", dependencies=READ,
            summary="Changes of health status, newest first")
async def history(
    service: str | None = Query(None, pattern=SERVICE_NAME),
    limit: int = Query(100, ge=1, le=1000),
    svc: DiscoveryService = Depends(discovery),
) -> list[HealthTransition]:
    return await svc.history(service, limit)
