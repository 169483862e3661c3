"""Trace: everything one correlation id touched across the services, in time order,
as a timeline; and the form to look one up."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from llmdocs.services.logcollector.client import LogCollectorClient
from llmdocs.services.web.pages import PageRoute, User, render, signed_in

router = APIRouter(route_class=PageRoute, include_in_schema=False)
CorrelationId = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/trace")
async def trace_form(request: Request, user: User = signed_in,
                     correlation_id: Annotated[str, Query(max_length=128)] = "") -> Response:
    """The look-up form; sent, it goes to that correlation id's timeline."""
    wanted = correlation_id.strip()
    if wanted:
        return RedirectResponse(f"/traces/{quote(wanted, safe='')}", status_code=303)
    return render(request, "trace.html", correlation=None, correlation_id="")


@router.get("/traces/{correlation_id}")
async def trace(request: Request, correlation_id: CorrelationId,
                user: User = signed_in) -> Response:
    """The request's logs and events across services, each at its offset from the first."""
    found = await user.client(LogCollectorClient).correlation(correlation_id)
    start = found.timeline[0].time if found.timeline else None
    offsets = [round((entry.time - start).total_seconds() * 1000, 1) if start else 0.0
               for entry in found.timeline]
    return render(request, "trace.html", correlation=found, correlation_id=correlation_id,
                  entries=list(zip(found.timeline, offsets, strict=True)))
