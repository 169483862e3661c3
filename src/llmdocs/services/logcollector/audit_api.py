"""HTTP routes of the audit trail: query, JSON Lines export and verification, for
holders of `logs:audit` (the `auditor` role) only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from llmdocs.core.auth import require
from llmdocs.core.db import INT8_MAX, StorableText, UtcDateTime
from llmdocs.services.logcollector.audit import AuditQuery, AuditStore
from llmdocs.services.logcollector.schemas import AuditPage, Verification

router = APIRouter(tags=["audit"])
AUDIT = [Depends(require("logs:audit"))]
NDJSON = "application/x-ndjson"


async def audit_store(request: Request) -> AuditStore:
    store: AuditStore = request.app.state.auditstore
    return store


async def audit_filters(
    actor: StorableText | None = Query(None, max_length=200, description="a subject"),
    resource_type: StorableText | None = Query(None, max_length=100),
    resource_id: StorableText | None = Query(None, max_length=500),
    action: StorableText | None = Query(None, max_length=200,
                                        description="a verb, e.g. document.read"),
    service: StorableText | None = Query(None, max_length=100),
    space: StorableText | None = Query(None, max_length=200),
    outcome: int | None = Query(None, ge=100, le=599, description="the status code"),
    correlation_id: StorableText | None = Query(None, max_length=128),
    since: UtcDateTime | None = Query(None, description="RFC 3339, inclusive"),
    until: UtcDateTime | None = Query(None, description="RFC 3339, exclusive"),
    cursor: int | None = Query(None, ge=0, le=INT8_MAX),
    limit: int = Query(100, ge=1, le=1000),
) -> AuditQuery:
    return AuditQuery(actor=actor, resource_type=resource_type, resource_id=resource_id,
                      action=action, service=service, space=space, outcome=outcome,
                      correlation_id=correlation_id, since=since, until=until,
                      before=cursor, limit=limit)


@router.get("/audit", dependencies=AUDIT, response_model=AuditPage,
            summary="Audit records, newest first; or all as JSON Lines (export)",
            responses={200: {"content": {NDJSON: {}}}})
async def audit(
    request: Request, f: AuditQuery = Depends(audit_filters),
    format: Literal["json", "jsonl"] = Query("json", description="jsonl: export them all"),
    store: AuditStore = Depends(audit_store),
) -> AuditPage | StreamingResponse:
    if format == "jsonl" or NDJSON in request.headers.get("accept", ""):
        async def lines() -> AsyncIterator[str]:
            async for record in store.export(f):
                yield record.model_dump_json() + "\n"

        return StreamingResponse(lines(), media_type=NDJSON)
    items, cursor = await store.page(f)
    return AuditPage(items=items, next_cursor=cursor)


@router.get("/audit/verify", dependencies=AUDIT, response_model=Verification,
            summary="Walk every chain; name the first record changed, removed or inserted")
async def verify(store: AuditStore = Depends(audit_store)) -> Verification:
    return await store.verify()
