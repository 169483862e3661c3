"""The log-collector: idempotent storage, queries and retention on SQLite and PostgreSQL;
over real HTTP the bus consumer (surviving a restart), log ingest, the live tail,
correlation timelines and the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from llmdocs.cli import app as cli_app
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.db import Database, utcnow
from llmdocs.core.events import Event
from llmdocs.core.logship import LOGS_SHIPPED
from llmdocs.core.resources import Resources
from llmdocs.devservers import free_port
from llmdocs.migrations import upgrade
from llmdocs.services import create_app
from llmdocs.services.logcollector.audit import AuditStore
from llmdocs.services.logcollector.client import LogCollectorClient
from llmdocs.services.logcollector.schemas import LogIn
from llmdocs.services.logcollector.service import LogStore, Query
from llmdocs.services.logcollector.settings import LogCollectorSettings

Serve = Callable[..., Awaitable[Any]]
GUARD = 30.0  # a hang guard, not a performance bound


def event(kind: str = "llmdocs.document.stored", correlation: str | None = None,
          source: str = "llmdocs/docstore", **data: Any) -> Event:
    return Event(source=source, type=kind, data=data, correlationid=correlation)


@pytest.fixture
async def logstore(database_url: str) -> AsyncIterator[LogStore]:
    database = Database(database_url)
    await database.migrate(upgrade)
    yield LogStore(database)
    await database.dispose()


async def test_store_queries_and_retention(logstore: LogStore) -> None:
    now = utcnow()
    records = [
        LogIn(id="a", service="docstore", level="INFO", message="stored 100% of doc_1",
              correlation_id="c1", time=now - timedelta(seconds=3)),
        LogIn(id="b", service="docstore", level="warn", message="slow Query on docs",
              correlation_id="c1", time=now - timedelta(seconds=1)),
        LogIn(id="c", service="gateway", level="error", message="provider down",
              time=now - timedelta(seconds=2), attributes={"provider": "local"}),
        LogIn(id="old", service="gateway", message="ancient", time=now - timedelta(days=30)),
    ]
    assert await logstore.add_logs(records) == 4
    assert await logstore.add_logs(records[:2]) == 0  # re-sent: idempotent on id
    shared = event(correlation="c1")
    assert await logstore.add_events([shared, event("llmdocs.llm.completed", "c2",
                                                    "llmdocs/gateway", model="m")]) == 2
    assert await logstore.add_events([shared]) == 0  # redelivered: stored once

    async def ids(**kw: Any) -> list[str]:
        return [r.id for r in (await logstore.logs(Query(**kw)))[0]]

    assert await ids() == ["b", "c", "a", "old"]  # newest first
    assert await ids(service="gateway") == ["c", "old"]
    assert await ids(levels=["warning", "error"]) == ["b", "c"]
    assert await ids(text="100%") == ["a"]  # % is literal, not a wildcard
    assert await ids(text="doc_") == ["a"]  # _ too
    assert await ids(text="query") == ["b"]  # case-insensitive on both databases
    assert await ids(since=now - timedelta(seconds=2.5), until=now) == ["b", "c"]
    assert await ids(correlation_id="c1") == ["b", "a"]

    first, cursor = await logstore.logs(Query(limit=3))
    assert cursor is not None and [r.id for r in first] == ["b", "c", "a"]
    rest, end = await logstore.logs(Query(limit=3, cursor=cursor))
    assert [r.id for r in rest] == ["old"] and end is None
    assert (await logstore.logs(Query(service="gateway")))[0][0].attributes == {
        "provider": "local"}

    events, _ = await logstore.events(Query(types=["llmdocs.llm.completed"]))
    assert [e.data for e in events] == [{"model": "m"}] and events[0].service == "gateway"
    assert [e.id for e in (await logstore.events(Query(text="llm.completed")))[0]] == [
        events[0].id]

    timeline = await logstore.correlation("c1")
    assert [(t.kind, t.summary) for t in timeline.timeline] == [
        ("log", "stored 100% of doc_1"), ("log", "slow Query on docs"),
        ("event", "llmdocs.document.stored")]
    assert timeline.services == ["docstore"]

    [window] = await logstore.stats([("1h", timedelta(hours=1))])
    assert window.logs_by_service == {"docstore": 2, "gateway": 1}
    assert window.logs_by_level == {"info": 1, "warning": 1, "error": 1}
    assert window.events_by_type == {"llmdocs.document.stored": 1, "llmdocs.llm.completed": 1}

    removed = await logstore.enforce_retention(timedelta(days=7), max_logs=2, max_events=10)
    assert removed == {"logs": 2, "events": 0}  # "old" by age, then "a" by size
    assert await ids() == ["b", "c"]


async def test_events_may_be_kept_longer_than_logs(logstore: LogStore) -> None:
    month_ago = utcnow() - timedelta(days=30)
    await logstore.add_logs([LogIn(id="old", service="gateway", message="m", time=month_ago)])
    await logstore.add_events([event().model_copy(update={"time": month_ago})])
    longer = LogCollectorSettings(retention_days=7, event_retention_days=60)
    audit = AuditStore(logstore.database)
    assert await logstore.retain(longer, audit) == {"logs": 1, "events": 0, "audit": 0}
    assert await logstore.retain(LogCollectorSettings(retention_days=7), audit) == {
        "logs": 0, "events": 1, "audit": 0}  # unset: as long as logs'


async def test_shipped_batches_become_log_records(logstore: LogStore) -> None:
    """A batch a service shipped: its valid records are stored (once, however often it
    is delivered) with their trace id, which the correlation names; a bad record costs
    only itself."""
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    good = {"id": "r1", "service": "doc-store", "level": "info", "message": "request",
            "correlation_id": "c9", "trace_id": trace_id, "attributes": {"path": "/x"}}
    batch = event(LOGS_SHIPPED, source="llmdocs/docstore", dropped=0,
                  records=[good, {"id": "r2", "service": "", "message": "no service"}])
    assert await logstore.add_shipped([batch]) == 1
    assert await logstore.add_shipped([batch]) == 0  # redelivered: stored once
    [stored], _ = await logstore.logs(Query(correlation_id="c9"))
    assert (stored.service, stored.trace_id, stored.attributes) == (
        "doc-store", trace_id, {"path": "/x"})
    traced = Event(source="llmdocs/docstore", type="llmdocs.document.stored",
                   correlationid="c9", traceparent=f"00-{'ab' * 16}-{'cd' * 8}-01")
    await logstore.add_events([traced])
    timeline = await logstore.correlation("c9")
    assert timeline.trace_ids == sorted([trace_id, "ab" * 16])
    assert [e.kind for e in timeline.timeline] == ["log", "event"]


@pytest.fixture(params=["embedded", "distributed"])
def collector_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Embedded (SQLite, the SQL bus) or distributed (PostgreSQL, Redis Streams)."""
    # the records counted here are those sent; the collector's own logs stay out
    update: dict[str, Any] = {"logcollector_port": free_port(), "log_ship_level": "off"}
    if request.param == "distributed":
        update |= {"database_url": request.getfixturevalue("pg_url"),
                   "events_url": request.getfixturevalue("redis_url")}
    return settings.model_copy(update=update)


def headers(settings: Settings, *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, 'user:t', scopes or ('*',))}"}


async def wait_for(probe: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(GUARD):
        while not await probe():
            await asyncio.sleep(0.05)


async def test_collector_over_http(
    collector_settings: Settings, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = collector_settings
    monkeypatch.setenv("LLMDOCS_LOGCOLLECTOR_STREAM_POLL_SECONDS", "0.05")
    bus = Resources.from_settings(s)
    await bus.open(upgrade)
    try:
        collector = await serve(create_app("logcollector", s), port=s.logcollector_port)
        async with httpx.AsyncClient(base_url=collector.url, headers=headers(s)) as http:
            await bus.events.publish(event(correlation="req-1", id="doc-1"))

            async def stored(count: int) -> bool:
                return len((await http.get("/events")).json()["items"]) >= count

            await wait_for(lambda: stored(1))

            # the collector stops, events keep coming, the group picks up where it was
            await collector.stop()
            await bus.events.publish_many([event("llmdocs.workflow.completed", "req-1",
                                                 "llmdocs/orchestrator"),
                                           event("llmdocs.llm.completed", "req-2")])
            await serve(create_app("logcollector", s), port=s.logcollector_port)
            await wait_for(lambda: stored(3))
            assert len((await http.get("/events")).json()["items"]) == 3

            ok = await http.post("/logs", json={"service": "interpreter", "level": "INFO",
                                                "message": "query parsed",
                                                "correlation_id": "req-1"})
            assert ok.status_code == 202 and ok.json() == {"received": 1, "stored": 1}
            batch = [{"id": f"r{i}", "service": "orchestrator", "message": f"step {i}",
                      "correlation_id": "req-1"} for i in range(3)]
            assert (await http.post("/logs/batch", json={"records": batch})).json() == {
                "received": 3, "stored": 3}
            assert (await http.post("/logs/batch", json={"records": batch})).json() == {
                "received": 3, "stored": 0}

            bad = await http.post("/logs/batch", json={"records": [
                {"service": "", "message": "x"}, {"level": "loud", "message": 3}]})
            assert bad.status_code == 422
            assert bad.headers["content-type"] == "application/problem+json"
            assert {"body.records.0.service", "body.records.1.level", "body.records.1.service",
                    "body.records.1.message"} <= {e["field"] for e in bad.json()["errors"]}
            assert (await http.post("/logs/batch", json={"records": []})).status_code == 422
            assert (await http.post("/logs", content=b"{nope", headers={
                "content-type": "application/json"})).status_code == 422
            assert (await http.get("/logs", params={"cursor": "!!"})).status_code == 422
            assert (await http.get("/stats", params={"window": "1y"})).status_code == 422

            trace = (await http.get("/correlations/req-1")).json()
            kinds = [(t["kind"], t["service"]) for t in trace["timeline"]]
            assert kinds[:2] == [("event", "docstore"), ("event", "orchestrator")]
            assert sorted(kinds[2:]) == [("log", "interpreter")] + [("log", "orchestrator")] * 3
            times = [t["time"] for t in trace["timeline"]]
            assert times == sorted(times) and all(t.endswith("Z") for t in times)

            # a time with another offset is stored and answered as UTC
            await http.post("/logs", json={"service": "tz", "message": "noon in Paris",
                                           "time": "2026-01-01T12:00:00+02:00"})
            [paris] = (await http.get("/logs", params={"service": "tz"})).json()["items"]
            assert paris["time"] == "2026-01-01T10:00:00Z"
            assert (await http.get("/logs", params={
                "service": "tz", "since": "2026-01-01T11:30:00+01:00"})).json()["items"] == []
            assert (await http.get("/correlations/nothing")).status_code == 404

            found = (await http.get("/logs", params={"q": "STEP", "limit": 2})).json()
            assert len(found["items"]) == 2 and found["next_cursor"]
            [stats] = (await http.get("/stats", params={"window": "1h"})).json()
            assert stats["logs_by_service"] == {"interpreter": 1, "orchestrator": 3}

        async with httpx.AsyncClient(base_url=collector.url) as anon:
            assert (await anon.get("/logs")).status_code == 401
            assert (await anon.get("/logs", headers=headers(s, "docs:read"))).status_code == 403
            assert (await anon.post("/logs", json={"service": "x", "message": "y"},
                                    headers=headers(s, "logs:read"))).status_code == 403

        # live tail: a record sent after the stream opened arrives as a server-sent event
        async with LogCollectorClient.for_service(s, token=issue_token(s, "u", ["logs:*"])) as c:
            async def first_tailed() -> str:
                async for record in c.tail(service="summarizer"):
                    return record.message
                return ""

            tailing = asyncio.create_task(first_tailed())
            await asyncio.sleep(0.3)  # let the stream open before the record is sent
            await c.send_logs([LogIn(service="other", message="not for us")])
            await c.send_logs([LogIn(service="summarizer", message="summary ready")])
            async with asyncio.timeout(GUARD):
                assert await tailing == "summary ready"

            # a reconnect with the id of the last event it got resumes after that record
            [other] = (await c.logs(service="other")).items
            [ready] = (await c.logs(service="summarizer")).items
            async with asyncio.timeout(GUARD), c.http.stream(
                    "GET", "/logs/stream",
                    headers={**headers(s, "logs:read", "logs:audit"),
                             "Last-Event-ID": str(other.seq)}) as sse:
                assert sse.status_code == 200
                lines = (line async for line in sse.aiter_lines() if line.startswith("id:"))
                # where it starts (the id it was given), then the record after it
                started, first = await anext(lines), await anext(lines)
            assert (started, first) == (f"id: {other.seq}", f"id: {ready.seq}")
    finally:
        await bus.close()


async def test_logs_cli(settings: Settings, serve: Serve,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings.model_copy(update={"logcollector_port": free_port()})
    await serve(create_app("logcollector", s), port=s.logcollector_port)
    async with LogCollectorClient.for_service(s, token=issue_token(s, "u", ["*"])) as c:
        await c.send_logs([LogIn(id="x1", service="docstore", message="saved it",
                                 correlation_id="cli-1")])
    monkeypatch.setenv("LLMDOCS_LOGCOLLECTOR_PORT", str(s.logcollector_port))
    monkeypatch.setenv("LLMDOCS_DATA_DIR", str(s.data_dir))
    monkeypatch.setenv("LLMDOCS_JWT_SECRET", s.signing_key)
    runner = CliRunner()

    async def cli(*args: str) -> str:
        result = await asyncio.to_thread(runner.invoke, cli_app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    assert json.loads(await cli("logs", "search", "saved", "--json"))[0]["id"] == "x1"
    trace = json.loads(await cli("logs", "trace", "cli-1", "--json"))
    assert trace["count"] == 1 and trace["services"] == ["docstore"]
    assert "saved it" in await cli("logs", "trace", "cli-1")
    missing = await asyncio.to_thread(runner.invoke, cli_app, ["logs", "trace", "nope"])
    assert missing.exit_code == 1
