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

from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.core.events import Event
from llmdocs.core.privacy import pseudonym
from llmdocs.core.resources import Resources
from llmdocs.devservers import free_port
from llmdocs.services import create_app

SUBJECT = "marker-user"
MARKER = "Quetzalcoatl flamingo marmalade 7781 whispers"
TERM = "quetzalcoatl"  # a word of the marker as the search index keeps it (lowercase)
SERVICES = ("docstore", "promptstore", "logcollector", "notification")
GUARD = 30.0
AUDITED = 5  # the user's writes the audit trail records


@pytest.fixture
async def eco(settings: Settings, serve: Any) -> AsyncIterator[tuple[Settings, list[Any]]]:
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES}
                              | {"inprocess_calls": False})
    running = [await serve(create_app(key, eco), port=eco.port_for(key))
               for key in ("gateway", *SERVICES)]
    yield eco, running


def client(settings: Settings, key: str, subject: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=settings.url_for(key), timeout=GUARD, headers={
        "Authorization": f"Bearer {issue_token(settings, subject, ['*'])}"})


async def make_data(settings: Settings) -> None:
    """The marker in a document (text, then a binary version), a prompt, a subscription
    and its inbox, a log record and an event naming the user."""
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


async def test_an_erased_user_leaves_no_trace(eco: tuple[Settings, list[Any]]) -> None:
    settings, running = eco
    await make_data(settings)
    await settled(settings)
    db = settings.data_dir / "llmdocs.db"
    assert ("docstore_fts_data", TERM) in rows_naming(db, TERM)  # the index holds it
    on_disk = {file for file, _ in files_naming(settings.data_dir, MARKER)}
    assert any(file.startswith("blobs/") for file in on_disk), on_disk  # the upload

    receipts = {}
    async with client(settings, "docstore", "admin") as admin:
        for key in SERVICES:  # the log-collector last: it keeps the others' logs
            answer = await admin.delete(f"{settings.url_for(key)}/privacy/held/{SUBJECT}")
            assert answer.status_code == 200, answer.text
            receipts[key] = answer.json()["erased"]
            assert answer.json()["scrubbed"]["logs truncated"] == 1, answer.text
    assert receipts["docstore"]["documents deleted"] == 2
    assert receipts["promptstore"]["prompts deleted"] == 1
    assert receipts["notification"]["subscriptions deleted"] == 1
    assert receipts["notification"]["inbox items deleted"] >= 1
    assert receipts["logcollector"]["log records deleted"] >= 1
    assert receipts["logcollector"]["events deleted"] >= 1
    assert receipts["logcollector"]["audit records pseudonymised"] >= AUDITED

    needles = (MARKER, TERM, SUBJECT)
    assert rows_naming(db, *needles) == []
    assert files_naming(settings.data_dir, *needles) == []
    async with client(settings, "logcollector", "admin") as logs:
        shown = (await logs.get("/audit", params={"actor": SUBJECT})).json()["items"]
        assert shown and {r["actor"] for r in shown} == {pseudonym(settings, SUBJECT)}
        verified = (await logs.get("/audit/verify")).json()
        assert verified["intact"], verified
        for key in SERVICES:  # erasing again finds nothing
            again = await logs.delete(f"{settings.url_for(key)}/privacy/held/{SUBJECT}")
            assert again.status_code == 200, again.text
            assert not any(again.json()["erased"].values()), again.text

    for app in running:  # and nothing after a shutdown either
        await app.stop()
    assert files_naming(settings.data_dir, *needles) == []
