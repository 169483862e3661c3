"""HTTP routes of the log-collector. Routes parse, call service.py and shape the answer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from sse_starlette import EventSourceResponse

from llmdocs.core.auth import Principal, require
from llmdocs.core.db import INT8_MAX, StorableText, UtcDateTime
from llmdocs.core.errors import Problem, domain_problems
from llmdocs.core.spaces import Spaces
from llmdocs.services.logcollector.errors import BadCursor, NothingRecorded
from llmdocs.services.logcollector.schemas import (
    Accepted,
    Correlation,
    Level,
    LogBatch,
    LogIn,
    Page,
    WindowStats,
)
from llmdocs.services.logcollector.service import LogStore, Tail
from llmdocs.services.logcollector.service import Query as Filters
from llmdocs.services.logcollector.settings import LogCollectorSettings

router = APIRouter(tags=["log-collector"], dependencies=[Depends(domain_problems(
    {BadCursor: 422, NothingRecorded: 404}))])
_read = require("logs:read")
READ = [Depends(_read)]
WRITE = [Depends(require("logs:write"))]
# service logs may quote any document of any space: only these read them
LOG_READERS = ("logs:audit", "logs:admin")


def may_read_logs(caller: Principal) -> bool:
    """Auditors and admins (the roles' scopes), and services acting as themselves."""
    return caller.is_service or any(caller.allows(scope) for scope in LOG_READERS)


async def log_reader(caller: Principal = Depends(_read)) -> Principal:
    """A route dependency: the caller may read service logs."""
    if not may_read_logs(caller):
        raise Problem(403, "Service logs may quote documents of any space: reading them "
                      "takes the logs:audit or logs:admin scope (the auditor or admin role).")
    return caller


LOGS = [Depends(log_reader)]
_WINDOW = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
STREAM_DESCRIPTION = """Log records as they arrive, one `log` event each, whose `id` is
the record's sequence number. The first message carries only the `id` to resume from
and the `retry` delay (ms).

The stream ends by itself: after `LLMDOCS_LOGCOLLECTOR_STREAM_IDLE_SECONDS` (default
300) without a new record, and after `LLMDOCS_LOGCOLLECTOR_STREAM_MAX_SECONDS` (default
3600) in all. A reader goes on as server-sent events readers do: it connects again with
the last id it got in `Last-Event-ID`, and receives the records after it, none lost."""


async def store(request: Request) -> LogStore:
    logstore: LogStore = request.app.state.logstore
    return logstore


async def filters(
    service: StorableText | None = Query(None, max_length=100),
    since: UtcDateTime | None = Query(None, description="RFC 3339, inclusive"),
    until: UtcDateTime | None = Query(None, description="RFC 3339, exclusive"),
    correlation_id: StorableText | None = Query(None, max_length=128),
    q: StorableText | None = Query(None, min_length=1, max_length=500,
                                   description="text to find"),
    cursor: str | None = Query(None, max_length=200),
    limit: int = Query(100, ge=1, le=1000),
) -> Filters:
    return Filters(service=service, since=since, until=until, correlation_id=correlation_id,
                   text=q, cursor=cursor, limit=limit)


@router.post("/logs", dependencies=WRITE, status_code=202, summary="Store one log record")
async def add_log(record: LogIn, logs: LogStore = Depends(store)) -> Accepted:
    return Accepted(received=1, stored=await logs.add_logs([record]))


@router.post("/logs/batch", dependencies=WRITE, status_code=202,
             summary="Store up to 1000 log records at once")
async def add_logs(batch: LogBatch, logs: LogStore = Depends(store)) -> Accepted:
    return Accepted(received=len(batch.records), stored=await logs.add_logs(batch.records))


@router.get("/logs", dependencies=LOGS, summary="Log records, newest first "
            "(logs:audit or logs:admin)")
async def list_logs(
    level: list[Level] = Query([]), f: Filters = Depends(filters),
    logs: LogStore = Depends(store),
) -> Page:
    f.levels = level
    items, cursor = await logs.logs(f)
    return Page(items=items, next_cursor=cursor)


@router.get("/events", dependencies=READ, summary="Events from the bus, newest first "
            "(of the spaces the caller is a member of, and of none)")
async def list_events(
    spaces: Spaces, type: list[StorableText] = Query([], max_length=50),
    f: Filters = Depends(filters), logs: LogStore = Depends(store),
) -> Page:
    f.types, f.spaces = type, spaces.visible()
    items, cursor = await logs.events(f)
    return Page(items=items, next_cursor=cursor)


@router.get("/stats", dependencies=READ,
            summary="Counts by service, level and type over time windows")
async def stats(
    window: list[str] = Query(["5m", "1h", "24h"], max_length=10,
                              description="e.g. 30s, 15m, 6h, 7d"),
    logs: LogStore = Depends(store),
) -> list[WindowStats]:
    spans: list[tuple[str, timedelta]] = []
    for label in window:
        match = _WINDOW.match(label)
        if match is None:
            raise Problem(422, f"The window {label!r} is not like 15m, 6h or 7d.",
                          errors=[{"field": "query.window", "message": "expected <n><s|m|h|d>"}])
        spans.append((label, timedelta(**{_UNITS[match[2]]: int(match[1])})))
    return await logs.stats(spans)


@router.get("/logs/stream", dependencies=LOGS, response_class=EventSourceResponse,
            summary="Live tail of log records as server-sent events (logs:audit or "
            "logs:admin)",
            description=STREAM_DESCRIPTION)
async def stream(
    level: list[Level] = Query([]),
    service: StorableText | None = Query(None, max_length=100),
    correlation_id: StorableText | None = Query(None, max_length=128),
    # the id of an event this stream sent: any other is refused here, before the stream
    # opens (it broke the stream's first read, or was ignored without a word)
    last_event_id: int | None = Header(None, ge=0, le=INT8_MAX,
                                       description="resume after this record"),
    logs: LogStore = Depends(store),
) -> EventSourceResponse:
    f = Filters(service=service, correlation_id=correlation_id, levels=level, limit=500)
    config = LogCollectorSettings()
    tail = Tail(config.stream_poll_seconds, config.stream_idle_seconds,
                config.stream_max_seconds)
    after = last_event_id if last_event_id is not None else await logs.last_log_seq()

    async def events() -> AsyncIterator[dict[str, Any]]:
        # where the stream starts, so that a reader that gets no record still resumes
        # from here; and how long it waits before it does
        yield {"id": str(after), "retry": round(tail.poll * 1000)}
        async for record in logs.follow(after, f, tail):
            yield {"event": "log", "id": str(record.seq), "data": record.model_dump_json()}

    return EventSourceResponse(events(), ping=15)


@router.get("/correlations/{correlation_id}",
            summary="Everything that happened for one request, across services, in order: "
            "the events the caller may see, and the log records for logs:audit or "
            "logs:admin")
async def correlation(correlation_id: Annotated[StorableText, Path(max_length=128)],
                      spaces: Spaces, caller: Principal = Depends(_read),
                      logs: LogStore = Depends(store)) -> Correlation:
    return await logs.correlation(correlation_id, spaces.visible(), may_read_logs(caller))


@router.post("/retention", dependencies=[Depends(require("logs:admin"))],
             summary="Apply retention now (it also runs periodically)")
async def retention(request: Request, logs: LogStore = Depends(store)) -> dict[str, int]:
    return await logs.retain(LogCollectorSettings(), request.app.state.auditstore)
