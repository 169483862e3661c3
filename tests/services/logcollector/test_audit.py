"""The audit trail: services record writes, document reads, denials and admin actions
through the bus (spooled while it is down); the log-collector chains them, serves them
to auditors only, exports them, ages them out by prefix; `llmdocs audit verify` catches
a record changed, removed or inserted straight in the database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, insert, select, update
from typer.testing import CliRunner

from llmdocs.cli import app as cli_app
from llmdocs.core.audit import AUDIT_RECORDED, AuditTrail, audit_stream
from llmdocs.core.auth import Principal, delegated_token, issue_token
from llmdocs.core.config import Settings
from llmdocs.core.db import Database, utcnow
from llmdocs.core.events import Event
from llmdocs.core.resources import Resources
from llmdocs.devservers import RedisServer, free_port
from llmdocs.migrations import upgrade
from llmdocs.services import create_app
from llmdocs.services.logcollector.audit import AuditQuery, AuditStore, record_hash
from llmdocs.services.logcollector.models import AuditRecord

Serve = Callable[..., Awaitable[Any]]
GUARD = 30.0  # a hang guard, not a performance bound


def batch(service: str, *records: dict[str, Any]) -> Event:
    return Event(source=f"llmdocs/{service}", type=AUDIT_RECORDED,
                 data={"records": list(records)})


def record(n: int, service: str = "doc-store", **fields: Any) -> dict[str, Any]:
    return {"id": f"r{n}", "time": (utcnow() - timedelta(seconds=100 - n)).isoformat(),
            "service": service, "actor": f"user:u{n % 2}", "actor_kind": "user",
            "roles": ["editor"], "act": [], "client": "127.0.0.1", "method": "GET",
            "route": "/documents/{document_id}", "action": "document.read",
            "resource_type": "document", "resource_id": f"doc_{n}", "outcome": 200,
            "correlation_id": f"c{n}", **fields}


@pytest.fixture
async def audit_db(database_url: str) -> AsyncIterator[tuple[str, AuditStore]]:
    database = Database(database_url)
    await database.migrate(upgrade)
    yield database_url, AuditStore(database)
    await database.dispose()


def verify(url: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, ["audit", "verify", "--database-url", url])
    return result.exit_code, result.output


async def test_chains_are_idempotent_and_verify_catches_tampering(
    audit_db: tuple[str, AuditStore]
) -> None:
    url, store = audit_db
    first = batch("doc-store", *(record(n) for n in range(1, 6)))
    assert await store.add([first, batch("prompt-store", record(9, "prompt-store"))]) == 6
    assert await store.add([first]) == 0  # redelivered: appended once
    assert await store.add([batch("doc-store", {"id": "bad"})]) == 0  # refused, logged
    assert await asyncio.to_thread(verify, url) == (0, "intact: 6 records in 2 chains\n")
    code, output = await asyncio.to_thread(verify, "sqlite+aiosqlite:////nonexistent/x.db")
    assert code == 2 and "Cannot read the audit trail" in output  # no verdict either way

    engine = store.database.engine
    table = AuditRecord.__table__
    async with engine.connect() as conn:
        rows = {r.record_id: r for r in (await conn.execute(select(table))).all()}
    assert [rows[f"r{n}"].chain_seq for n in range(1, 6)] == [1, 2, 3, 4, 5]
    assert rows["r2"].prev_hash == rows["r1"].hash == record_hash(dict(rows["r1"]._mapping))

    async def tampered(statement: Any, undo: Any, problem: str, named: str) -> None:
        async with engine.begin() as conn:
            await conn.execute(statement)
        code, output = await asyncio.to_thread(verify, url)
        assert code == 1 and f"BROKEN ({problem})" in output and named in output, output
        assert len((await store.page(AuditQuery()))[0]) >= 5  # shown as it is, no error
        async with engine.begin() as conn:
            await conn.execute(undo)
        assert (await asyncio.to_thread(verify, url))[0] == 0

    mine = AuditRecord.record_id == "r3"
    await tampered(update(AuditRecord).where(mine).values(actor="user:someone-else"),
                   update(AuditRecord).where(mine).values(actor=rows["r3"].actor),
                   "changed", "record r3")
    await tampered(update(AuditRecord).where(mine).values(roles="{not json", outcome=0),
                   update(AuditRecord).where(mine).values(roles=rows["r3"].roles,
                                                          outcome=200),
                   "changed", "record r3")
    original = dict(rows["r3"]._mapping)
    await tampered(delete(AuditRecord).where(mine), insert(AuditRecord).values(original),
                   "removed", "before record r4")
    # a forged record, hashed as the store hashes, but chained to an older record
    forged = {**dict(rows["r5"]._mapping), "record_id": "forged", "chain_seq": 6,
              "actor": "user:mallory", "prev_hash": rows["r2"].hash}
    forged["hash"] = record_hash(forged)
    forged.pop("seq")
    await tampered(insert(AuditRecord).values(forged),
                   delete(AuditRecord).where(AuditRecord.record_id == "forged"),
                   "inserted", "record forged")

    # filters and pages
    page, cursor = await store.page(AuditQuery(actor="user:u1", service="doc-store", limit=2))
    assert [r.id for r in page] == ["r5", "r3"] and cursor is not None
    rest, end = await store.page(AuditQuery(actor="user:u1", service="doc-store", limit=2,
                                           before=cursor))
    assert [r.id for r in rest] == ["r1"] and end is None
    assert [r.id async for r in store.export(AuditQuery(service="prompt-store"))] == ["r9"]


async def test_retention_removes_whole_prefixes_and_keeps_the_chain_verifiable(
    audit_db: tuple[str, AuditStore]
) -> None:
    url, store = audit_db
    old = [record(n, time=(utcnow() - timedelta(days=500 - n)).isoformat())
           for n in (1, 2, 4)]
    # r4 and r5 are old too, but after a recent one: a prefix ends at the first recent
    recent = record(3)
    aged = record(5, time=(utcnow() - timedelta(days=450)).isoformat())
    await store.add([batch("doc-store", old[0], old[1], recent, old[2], aged)])
    assert await store.enforce_retention(timedelta(days=400)) == 2
    assert [r.id async for r in store.export(AuditQuery())] == ["r3", "r4", "r5"]
    await store.add([batch("doc-store", record(6))])  # appended after the anchor's head
    assert (await store.verify()).intact
    assert await asyncio.to_thread(verify, url) == (0, "intact: 4 records in 1 chains\n")


def auth(settings: Settings, subject: str, scopes: tuple[str, ...] = (),
         roles: tuple[str, ...] = ()) -> dict[str, str]:
    token = issue_token(settings, subject, scopes, roles=roles)
    return {"Authorization": f"Bearer {token}"}


async def until_audited(http: httpx.AsyncClient, count: int, **params: Any
                        ) -> list[dict[str, Any]]:
    async with asyncio.timeout(GUARD):
        while True:
            items: list[dict[str, Any]] = (await http.get("/audit", params=params)
                                           ).json()["items"]
            if len(items) >= count:
                return items
            await asyncio.sleep(0.05)


async def test_services_record_writes_reads_denials_and_admin_actions(
    settings: Settings, serve: Serve
) -> None:
    s = settings.model_copy(update={"docstore_port": free_port(), "log_ship_level": "off",
                                    "logcollector_port": free_port()})
    docs = await serve(create_app("docstore", s), port=s.docstore_port)
    logs = await serve(create_app("logcollector", s), port=s.logcollector_port)
    writer = auth(s, "user:writer", ("docs:read", "docs:write"))
    reader = auth(s, "user:reader", ("docs:read",))
    async with httpx.AsyncClient(base_url=docs.url) as http:
        made = await http.post("/documents", headers=writer | {"x-correlation-id": "w1"},
                               json={"title": "Spec", "content": "audited text"})
        doc = made.json()["document_id"]
        assert (await http.get(f"/documents/{doc}", headers=reader)).status_code == 200
        assert (await http.get("/documents")).status_code == 401
        assert (await http.delete(f"/documents/{doc}", headers=reader)).status_code == 403
        assert (await http.get("/documents", headers=reader)).status_code == 200  # not kept
        odd = await http.get("/documents/%00odd", headers=reader)  # kept, NUL escaped
        assert odd.status_code in (404, 422)
        user = Principal("user:reader", frozenset({"docs:read"}), roles=frozenset({"viewer"}))
        relayed = delegated_token(s, "orchestrator", user)  # the orchestrator, for the user
        assert (await http.get(f"/documents/{doc}", headers={
            "Authorization": f"Bearer {relayed}"})).status_code == 200
    async with httpx.AsyncClient(base_url=logs.url) as http:
        denied = await http.get("/audit", headers=auth(s, "user:nosy", ("*:read",)))
        assert denied.status_code == 403
        assert denied.headers["content-type"] == "application/problem+json"
        admin = await http.post("/retention", headers=auth(s, "user:root", roles=("admin",)))
        assert admin.status_code == 200
        http.headers.update(auth(s, "user:aud", roles=("auditor",)))
        trail = await until_audited(http, 6, service="doc-store")
        assert [(r["action"], r["actor"], r["outcome"]) for r in reversed(trail)] == [
            ("document.create", "user:writer", 201), ("document.read", "user:reader", 200),
            ("document.read", None, 401), ("document.delete", "user:reader", 403),
            ("document.read", "user:reader", odd.status_code),
            ("document.read", "user:reader", 200)]
        assert trail[1]["resource_id"] == "\\x00odd"
        assert (trail[0]["act"], trail[0]["roles"], trail[-2]["act"]) == (
            ["service:orchestrator"], ["viewer"], [])
        created = trail[-1]
        assert (created["method"], created["route"], created["correlation_id"],
                created["client"], created["roles"], created["actor_kind"]) == (
            "POST", "/documents", "w1", "127.0.0.1", [], "user")
        assert trail[-2]["resource_id"] == doc and trail[-2]["resource_type"] == "document"
        kept = await until_audited(http, 3, service="log-collector")
        assert {(r["route"], r["actor"], r["outcome"]) for r in kept} >= {
            ("/audit", "user:nosy", 403), ("/retention", "user:root", 200)}

        def ids(params: dict[str, Any]) -> Awaitable[httpx.Response]:
            return http.get("/audit", params=params)

        assert [r["outcome"] for r in (await ids({"outcome": 401})).json()["items"]] == [401]
        assert [r["actor"] for r in (await ids({"action": "document.read", "outcome": 200})
                                     ).json()["items"]] == ["user:reader", "user:reader"]
        assert len((await ids({"resource_id": doc})).json()["items"]) == 3
        assert (await ids({"since": "2999-01-01T00:00:00Z"})).json()["items"] == []
        assert (await ids({"outcome": 42})).status_code == 422
        exported = await http.get("/audit", params={"format": "jsonl", "service": "doc-store"})
        lines = [json.loads(line) for line in exported.text.splitlines()]
        assert exported.headers["content-type"].startswith("application/x-ndjson")
        assert [r["action"] for r in lines][:2] == ["document.create", "document.read"]
        accepted = await http.get("/audit", headers={"accept": "application/x-ndjson"})
        assert len(accepted.text.splitlines()) >= 7
        assert (await http.get("/audit/verify")).json()["intact"] is True


async def test_records_of_a_spaces_records_name_that_space(
    settings: Settings, serve: Serve
) -> None:
    """A read (or change) of a document, prompt, run or execution by id names the space
    it lives in, loaded where the store loads it; the read of a missing one none."""
    s = settings.model_copy(update={"docstore_port": free_port(), "log_ship_level": "off",
                                    "logcollector_port": free_port(),
                                    "promptstore_port": free_port()})
    docs = await serve(create_app("docstore", s), port=s.docstore_port)
    prompts = await serve(create_app("promptstore", s), port=s.promptstore_port)
    logs = await serve(create_app("logcollector", s), port=s.logcollector_port)
    bob = auth(s, "user:bob", ("docs:read", "docs:write", "prompts:read", "prompts:write"))
    async with httpx.AsyncClient(base_url=docs.url) as http:
        admin = auth(s, "user:admin", ("*",))
        assert (await http.post("/spaces", headers=admin, json={"name": "team-b"})
                ).status_code == 201
        assert (await http.put("/spaces/team-b/members/user:bob", headers=admin,
                               json={"role": "editor"})).status_code == 200
        made = await http.post("/documents", headers=bob, json={
            "title": "Spec", "content": "team-b's text", "space": "team-b"})
        assert made.status_code == 201, made.text
        doc = made.json()["document_id"]
        assert (await http.get(f"/documents/{doc}", headers=bob)).status_code == 200
        assert (await http.get("/documents/nothing-here", headers=bob)).status_code == 404
    async with httpx.AsyncClient(base_url=prompts.url) as http:
        made = await http.post("/api/v1/prompts", headers=bob, json={
            "name": "team-b-prompt", "content": "Hello {{ name }}", "space": "team-b"})
        assert made.status_code == 201, made.text
        assert (await http.get("/api/v1/prompts/team-b-prompt", headers=bob)
                ).status_code == 200
    async with httpx.AsyncClient(base_url=logs.url) as http:
        http.headers.update(auth(s, "user:aud", roles=("auditor",)))
        read = await until_audited(http, 2, action="document.read")
        assert {(r["resource_id"], r["space"]) for r in read} == {
            (doc, "team-b"), ("nothing-here", None)}
        prompt = await until_audited(http, 1, resource_id="team-b-prompt")
        assert [(r["action"], r["space"]) for r in prompt] == [("prompt.read", "team-b")]


async def test_records_made_while_the_bus_is_down_are_spooled_and_arrive(
    settings: Settings, redis_server: RedisServer, serve: Serve
) -> None:
    s = settings.model_copy(update={"events_url": redis_server.url, "log_ship_level": "off",
                                    "spool_flush_seconds": 0.05,
                                    "logcollector_port": free_port()})
    trail = AuditTrail("doc-store")
    resources = Resources.from_settings(s)
    await resources.open(upgrade)
    try:
        async with trail.running(s, resources.events):
            redis_server.stop()
            for n in range(3):
                trail.record(record(n))
            await trail.flush()  # publish spools: nothing is lost, nothing raises
            assert trail.queue == []
            spooled = list((s.data_dir / "spool").rglob("*.jsonl"))
            assert audit_stream(s) in "".join(p.read_text() for p in spooled)
            redis_server.start()
            logs = await serve(create_app("logcollector", s), port=s.logcollector_port)
            async with httpx.AsyncClient(base_url=logs.url, headers=auth(
                    s, "user:aud", roles=("auditor",))) as http:
                arrived = await until_audited(http, 3, service="doc-store")
            assert sorted(r["id"] for r in arrived) == ["r0", "r1", "r2"]
    finally:
        await resources.close()


async def test_replicas_appending_to_one_chain_at_once_keep_it_whole(pg_url: str) -> None:
    """Two log-collectors (two engines) on one PostgreSQL database append batches to the
    same chain concurrently: the advisory lock per chain keeps it unbroken."""
    databases = [Database(pg_url), Database(pg_url)]
    await databases[0].migrate(upgrade)
    stores = [AuditStore(database) for database in databases]
    try:
        batches = [batch("doc-store", *(record(10 * b + n) for n in range(5)))
                   for b in range(12)]
        stored = await asyncio.gather(*(stores[i % 2].add([b, batches[i - 1]])
                                        for i, b in enumerate(batches)))
        assert sum(stored) == 60  # each redelivered batch stored once, whoever took it
        async with databases[0].engine.connect() as conn:
            numbers = (await conn.scalars(select(AuditRecord.chain_seq)
                                          .order_by(AuditRecord.chain_seq))).all()
        assert numbers == list(range(1, 61))
        assert (await stores[1].verify()).intact
    finally:
        for database in databases:
            await database.dispose()
