"""`llmdocs keys rotate` re-seals every kind of sealed column, on SQLite and PostgreSQL:
notification secrets bound to their row (also those sealed with the generated secrets
key before a ring was set), the query in a document's provenance and replayed answers
to keyed requests. Afterwards no stored value names an older key, and each still opens
with the new key alone, for its own row."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import sqlalchemy as sa
from pydantic import SecretStr

from llmdocs.core import crypto
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.db import Database, key_ids_in
from llmdocs.keys import rotate
from llmdocs.services import create_app

SECRET = "whsec_" + base64.b64encode(b"pelican secret of 32 bytes long!").decode()
QUERY = "explain the pelican billing cycle"
KEY = base64.b64encode(b"r" * 32).decode()
COLUMNS = {"notification_subscriptions": "sealed", "docstore_versions": "provenance",
           "docstore_idempotency": "response"}


async def stored(database_url: str) -> dict[str, list[tuple[str, str]]]:
    """(id, value as stored) of each sealed column, read without a ring."""
    database = Database(database_url)
    try:
        async with database.engine.connect() as conn:
            return {table: [(str(key), value) for key, value in await conn.execute(sa.text(
                f"SELECT {'key' if table == 'docstore_idempotency' else 'id'}, "  # nosec B608
                f"CAST({column} AS TEXT) FROM {table} WHERE {column} IS NOT NULL"))]
                for table, column in COLUMNS.items()}
    finally:
        await database.dispose()


async def subscribe(serve: Any, settings: Settings) -> None:
    notifications = await serve(create_app("notification", settings))
    token = issue_token(settings, "user:t", ["notifications:read", "notifications:write"])
    async with httpx.AsyncClient(base_url=notifications.url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        made = await http.post("/subscriptions", json={
            "events": ["llmdocs.document.stored"],
            "channel": {"kind": "webhook", "url": "http://127.0.0.1:9/hook", "secret": SECRET}})
        assert made.status_code == 201, made.text
    await notifications.stop()


async def test_rotation_reseals_every_kind_of_sealed_column(
        serve: Any, settings: Settings, database_url: str) -> None:
    settings.database_url = database_url
    await subscribe(serve, settings)  # no ring yet: the generated secrets key seals it

    ring = settings.data_dir / "ring.json"
    ring.write_text(json.dumps({"k1": KEY}))
    settings = Settings(data_dir=settings.data_dir, jwt_secret=settings.jwt_secret,
                        database_url=database_url, encryption_keys=SecretStr(str(ring)),
                        log_format="console")
    await subscribe(serve, settings)  # sealed with k1
    docs = await serve(create_app("docstore", settings))
    token = issue_token(settings, "user:t", ["docs:read", "docs:write"])
    async with httpx.AsyncClient(base_url=docs.url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        made = await http.post("/documents?dedupe=false", headers={"Idempotency-Key": "once"},
                               json={
            "content": "generated", "provenance": {"user_context": {"query": QUERY}}})
        assert made.status_code == 201, made.text
        doc_id = made.json()["document_id"]
    before = await stored(database_url)
    generated = next(iter(settings.secrets_fallback))  # generated-1, or jwt-derived
    assert {kid for rows in before.values() for _, value in rows
            for kid in key_ids_in(value)} == {generated, "k1"}
    assert all(len(rows) >= 1 for rows in before.values()) and len(
        before["notification_subscriptions"]) == 2

    rotation = await rotate(settings, "k2", batch=1)
    assert rotation.finished and rotation.resealed >= 4

    after = await stored(database_url)
    new = crypto.KeyRing({"k2": base64.b64decode(json.loads(ring.read_text())["k2"])})
    for table, rows in after.items():
        assert [key for key, _ in rows] == [key for key, _ in before[table]]
        assert all(key_ids_in(value) == {"k2"} for _, value in rows), table
    for key, value in after["notification_subscriptions"]:  # still bound to its row
        assert json.loads(new.open_text(value, key))["secret"] == SECRET
    [(_, provenance)] = after["docstore_versions"]
    assert new.open_text(json.loads(provenance)["user_context"]["query"]) == QUERY
    [(_, response)] = after["docstore_idempotency"]
    assert json.loads(new.open_text(json.loads(response)))["document_id"] == doc_id

    again = await serve(create_app("docstore", settings))  # the services read it back
    async with httpx.AsyncClient(base_url=again.url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        got = await http.get(f"/documents/{doc_id}/provenance")
        assert got.json()["provenance"]["user_context"]["query"] == QUERY
        replayed = await http.post("/documents?dedupe=false",  # the answer kept: replayed
                                   headers={"Idempotency-Key": "once"}, json={
            "content": "generated", "provenance": {"user_context": {"query": QUERY}}})
        assert replayed.status_code == 201 and replayed.json()["document_id"] == doc_id
