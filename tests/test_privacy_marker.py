"""The proof of an erasure: a user's data made everywhere with a marker sentence, the
user erased, and the marker (and the user's name) found nowhere: not in any row, event,
log record, blob or cache, nor in the raw bytes of any file under the data dir
(SQLite's free pages and write-ahead log, FTS5 segments)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecosystem import embedded_up, store_spec
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.events import Event
from llmdocs.core.privacy import pseudonym
from llmdocs.core.resources import Resources
from services.interpreter.test_interpreter_input import PEOPLE, QUERY
from services.orchestrator.fakellm import fake_llm, provider_env

SUBJECT = "marker-user"
MARKER = "Quetzalcoatl flamingo marmalade 7781 whispers"
TERM = "quetzalcoatl"  # a word of the marker as the search index keeps it (lowercase)
GUARD = 30.0
AUDITED = 5  # the user's writes the audit trail records


@pytest.fixture
async def eco(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch
              ) -> AsyncIterator[tuple[Settings, asyncio.Event, asyncio.Task[None]]]:
    """`llmdocs up`: every service in this process on one SQLite database, the model a
    local fake speaking the OpenAI wire format."""
    model = await serve(fake_llm(0.0))
    for key, value in {**provider_env(model.url), "LLMDOCS_WORKFLOW_KEEP_CHECKPOINTS": "true",
                       "LLMDOCS_DISCOVERY_DISCOVER_ON_START": "false"}.items():
        monkeypatch.setenv(key, value)
    async with embedded_up(settings) as found:
        yield found


def client(settings: Settings, key: str, subject: str,
           scopes: tuple[str, ...] = ("*",)) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=settings.url_for(key), timeout=GUARD, headers={
        "Authorization": f"Bearer {issue_token(settings, subject, scopes)}"})


async def make_data(settings: Settings) -> None:
    """The marker in a query (its execution, run and checkpoints, its model calls'
    usage), a document and an uploaded file, a prompt, a subscription and its inbox, a
    log record and an event naming the user."""
    await store_spec(settings)
    async with client(settings, "interpreter", SUBJECT, PEOPLE) as user:
        done = await user.post("/execute-query", json={
            "query": f"{QUERY}, {MARKER}", "session_id": "marker-session"})
        assert done.status_code == 200, done.text
    async with client(settings, "docstore", SUBJECT) as docs:
        made = await docs.post("/documents", json={
            "title": f"Notes of {SUBJECT}", "content": f"{MARKER}. Written by {SUBJECT}.",
            "format": "markdown", "metadata": {"reviewer": SUBJECT}})
        assert made.status_code == 201, made.text
        upload = await docs.post("/documents", files={
            "file": ("notes.bin", f"\x00\x01{MARKER}".encode(), "application/octet-stream")},
            data={"title": "binary notes", "format": "binary"})
        assert upload.status_code == 201, upload.text
        found = await docs.get("/search", params={"q": TERM})
        assert found.status_code == 200 and found.json()["items"], found.text
    async with client(settings, "promptstore", SUBJECT) as prompts:
        made = await prompts.post("/api/v1/prompts", json={
            "name": "marker-prompt", "content": f"Answer as {MARKER}: {{{{question}}}}"})
        assert made.status_code == 201, made.text
    async with client(settings, "notification", SUBJECT) as notes:
        made = await notes.post("/subscriptions", json={
            "events": ["llmdocs.marker.*"], "channel": {"kind": "inbox"}})
        assert made.status_code == 201, made.text
    async with client(settings, "logcollector", SUBJECT) as logs:
        sent = await logs.post("/logs", json={
            "service": "web", "message": f"{SUBJECT} asked: {MARKER}",
            "attributes": {"user": SUBJECT}})
        assert sent.status_code == 202, sent.text
    resources = Resources.from_settings(settings)
    await resources.events.start()
    try:
        await resources.events.publish(Event(
            source="llmdocs/web", type="llmdocs.marker.noted", subject=SUBJECT,
            data={"user": SUBJECT, "note": MARKER}))
    finally:
        await resources.events.close()
        await resources.database.dispose()


async def settled(settings: Settings) -> None:
    """Wait until the log-collector holds the event, the inbox its item, and the audit
    trail the user's requests: nothing of theirs is still on its way."""
    async with (client(settings, "logcollector", "admin") as logs,
                client(settings, "notification", SUBJECT) as notes):
        seen: tuple[int, int, int] = (0, 0, 0)
        for _ in range(int(GUARD / 0.2)):
            events = (await logs.get("/events", params={"type": "llmdocs.marker.noted"}))
            audit = await logs.get("/audit", params={"actor": SUBJECT})
            inbox = await notes.get("/inbox")
            seen = (len(events.json()["items"]), len(audit.json()["items"]),
                    len(inbox.json()))
            if seen[0] and seen[1] >= AUDITED and seen[2]:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"events, audit records, inbox items: {seen}")


def rows_naming(path: Path, *needles: str) -> list[tuple[str, str]]:
    """(table, needle) for each table with a row holding a needle in any column."""
    conn = sqlite3.connect(path)
    try:
        tables = [name for (name,) in conn.execute(
            # a virtual table's rows are in its shadow tables (docstore_fts_data...)
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'")]
        found = []
        for table in tables:
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            for needle in needles:
                if any(needle.encode() in value if isinstance(value, bytes)
                       else needle in str(value) for row in rows for value in row):
                    found.append((table, needle))
        return found
    finally:
        conn.close()


def files_naming(root: Path, *needles: str) -> list[tuple[str, str]]:
    """(file, needle) for each file under `root` whose raw bytes hold a needle."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [(str(path.relative_to(root)), n) for n in needles
                  if n.encode() in data]
    return found


async def test_an_erased_user_leaves_no_trace(
        eco: tuple[Settings, asyncio.Event, asyncio.Task[None]]) -> None:
    settings, stop, running = eco
    await make_data(settings)
    await settled(settings)
    db = settings.data_dir / "llmdocs.db"
    assert ("docstore_fts_data", TERM) in rows_naming(db, TERM)  # the index holds it
    on_disk = {file for file, _ in files_naming(settings.data_dir, MARKER)}
    assert any(file.startswith("blobs/") for file in on_disk), on_disk  # the upload

    async with client(settings, "orchestrator", "user:dpo") as admin:
        erased = await admin.delete(f"/privacy/subjects/{SUBJECT}")
        assert erased.status_code == 200, erased.text
        assert erased.json()["status"] == "completed", erased.text
        receipts = {key: part["erased"] for key, part in erased.json()["services"].items()}
    assert receipts["interpreter"]["executions deleted"] == 1
    assert receipts["orchestrator"]["runs deleted"] == 1
    assert receipts["docstore"]["documents deleted"] == 3  # with the one generated
    assert receipts["promptstore"]["prompts deleted"] == 1
    assert receipts["notification"]["subscriptions deleted"] == 1
    assert receipts["notification"]["inbox items deleted"] >= 1
    assert receipts["logcollector"]["log records deleted"] >= 1
    assert receipts["logcollector"]["events deleted"] >= 1
    assert receipts["logcollector"]["audit records pseudonymised"] >= AUDITED
    await asyncio.sleep(1.0)  # what the erasure itself logged and audited, stored

    needles = (MARKER, TERM, SUBJECT)
    for database in (db, db.with_suffix(".checkpoints.db")):
        found = rows_naming(database, *needles)
        assert found == [], found
    found = files_naming(settings.data_dir, *needles)
    assert found == [], found
    async with client(settings, "logcollector", "user:dpo") as logs:
        assert (await logs.get("/audit", params={"actor": SUBJECT})).json()["items"] == []
        alias = pseudonym(settings, SUBJECT)
        shown = (await logs.get("/audit", params={"actor": alias})).json()["items"]
        assert len(shown) >= AUDITED and {r["actor"] for r in shown} == {alias}
        verified = (await logs.get("/audit/verify")).json()
        assert verified["intact"], verified
    async with client(settings, "orchestrator", "user:dpo") as admin:
        again = await admin.delete(f"/privacy/subjects/{SUBJECT}")  # finds nothing
        assert again.status_code == 200 and again.json()["nothing_found"], again.text

    stop.set()  # and nothing after a shutdown either
    await running
    assert files_naming(settings.data_dir, *needles) == []
