"""HTTP routes of the analysis service. Routes parse, call service.py and shape the answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from llmdocs.core.auth import Principal, require
from llmdocs.core.client import acting_for
from llmdocs.core.db import StorableText
from llmdocs.core.errors import Problem, domain_problems
from llmdocs.core.spaces import Spaces
from llmdocs.openapi.diff import Diff
from llmdocs.services.analysis.errors import (
    BadSpec,
    NotMarkdown,
    RefreshFailed,
    Refused,
    UnknownDocument,
)
from llmdocs.services.analysis.schemas import ChangeIn, CheckIn, CheckOut, DiffIn, FindingOut
from llmdocs.services.analysis.service import Analysis
from llmdocs.services.analysis.visibility import trimmed

router = APIRouter(tags=["analysis"], dependencies=[Depends(domain_problems({
    BadSpec: 422, NotMarkdown: 422, UnknownDocument: 404, Refused: 403,
    RefreshFailed: 502}))])
Reader = Annotated[Principal, Depends(require("analysis:read"))]
Writer = Annotated[Principal, Depends(require("analysis:write"))]


async def service(request: Request) -> Analysis:
    analysis: Analysis = request.app.state.analysis
    return analysis


Service = Annotated[Analysis, Depends(service)]


@contextmanager
def as_caller(request: Request, caller: Principal) -> Iterator[None]:
    """Read what the request names with the caller's rights, never more."""
    with acting_for(request.app.state.settings, "analysis", caller):
        yield


@router.post("/diff", response_model=Diff,
             summary="What changed between two specs, and which changes break clients")
async def diff(body: DiffIn, request: Request, caller: Reader, svc: Service) -> Diff:
    with as_caller(request, caller):
        base = await svc.specs.load(body.base, "base")
        head = await svc.specs.load(body.head, "head")
    return await svc.specs.diff(base, head)


@router.post("/check", response_model=CheckOut,
             summary="What a Markdown document claims that the spec does not support, "
                     "and the operations it misses")
async def check(body: CheckIn, request: Request, caller: Reader, svc: Service) -> CheckOut:
    with as_caller(request, caller):
        markdown = await svc.specs.markdown(body.document)
        spec = await svc.specs.load(body.spec, "spec")
    return await svc.specs.check(markdown, spec)


@router.post("/findings", response_model=FindingOut, status_code=201,
             responses={204: {"description": "the two specs are the same"}},
             summary="Record a source's change: diff, stale documents, regeneration")
async def record(body: ChangeIn, request: Request, caller: Writer, svc: Service,
                 spaces: Spaces) -> FindingOut | Response:
    with as_caller(request, caller):
        space = await svc.source_space(body.source)
        base = await svc.specs.load(body.base, "base")
        head = await svc.specs.load(body.head, "head")
    # as analysis: it marks documents stale in every space; the caller sees their own
    found = await svc.record(body.source, base, head, space)
    return Response(status_code=204) if found is None else trimmed(found, spaces.visible())


@router.get("/findings", response_model=list[FindingOut], summary="Findings, newest first")
async def findings(
    _: Reader, svc: Service, spaces: Spaces,
    document_id: str | None = Query(None, max_length=36, pattern=r"^[A-Za-z0-9-]+$"),
    status: Literal["open", "closed"] | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> list[FindingOut]:
    return await svc.findings(document_id, status, limit, spaces.visible())


@router.get("/findings/{finding_id}", response_model=FindingOut, summary="One finding")
async def finding(finding_id: Annotated[StorableText, Path(max_length=36)], _: Reader,
                  svc: Service, spaces: Spaces) -> FindingOut:
    found = await svc.finding(finding_id, spaces.visible())
    if found is None:
        raise Problem(404, f"No finding {finding_id!r}.")
    return found
