"""The query a generated document was made for is sealed in its stored provenance when a
key ring is set (single writes, versions, rollbacks and bulk imports), on SQLite and
PostgreSQL, while the provenance views still show it to whoever may see it."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import sqlalchemy as sa
from pydantic import SecretStr

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.db import Database
from llmdocs.services import create_app

QUERY = "document the refund ledger of the zanzibar warehouse"
KEY = base64.b64encode(b"q" * 32).decode()


def provenance(user: str) -> dict[str, Any]:
    return {"user_context": {"user_id": user, "query": QUERY, "intent": "api_docs"},
            "workflow_execution": {"execution_id": "run-1", "steps": []}}


async def test_the_query_in_a_provenance_is_sealed_and_shown(
        serve: Any, settings: Settings, database_url: str) -> None:
    settings.database_url = database_url
    settings.encryption_keys = SecretStr(json.dumps({"k1": KEY}))
    owner = issue_token(settings, "user:owner", ["docs:read", "docs:write"])
    other = issue_token(settings, "user:other", ["docs:read"])
    docs = await serve(create_app("docstore", settings))
    async with httpx.AsyncClient(base_url=docs.url, timeout=30,
                                 headers={"Authorization": f"Bearer {owner}"}) as http:
        made = (await http.post("/documents", json={
            "content": "generated", "provenance": provenance("user:owner")})).json()
        doc_id = made["document_id"]
        assert (await http.put(f"/documents/{doc_id}", json={
            "content": "generated again", "provenance": provenance("user:owner")})
            ).status_code == 200
        assert (await http.post(f"/documents/{doc_id}/rollback", json={"version": 1})
                ).status_code == 200
        bulk = await http.post("/documents/bulk", content=json.dumps(
            {"content": "bulk", "provenance": provenance("user:owner")}) + "\n",
            headers={"Content-Type": "application/x-ndjson"})
        assert bulk.status_code in (200, 207), bulk.text
        bulk_id = json.loads(bulk.text.splitlines()[0])["document_id"]

        for document in (doc_id, bulk_id):
            seen = (await http.get(f"/documents/{document}/provenance")).json()
            assert seen["provenance"]["user_context"] == provenance("user:owner")[
                "user_context"]
        version = (await http.get(f"/documents/{doc_id}/versions/2")).json()
        assert version["provenance"]["user_context"]["query"] == QUERY
        # another reader sees the query but not who asked, as without a ring
        shown = (await http.get(f"/documents/{doc_id}/provenance",
                                headers={"Authorization": f"Bearer {other}"})).json()
        assert shown["provenance"]["user_context"] == {"query": QUERY, "intent": "api_docs"}

    database = Database(database_url)  # the rows as stored, read without a ring
    try:
        async with database.engine.connect() as conn:
            stored = list((await conn.execute(sa.text(
                "SELECT CAST(provenance AS TEXT) FROM docstore_versions"))).scalars())
    finally:
        await database.dispose()
    assert len(stored) == 4
    assert all("ldenc1:k1:" in row and "zanzibar" not in row for row in stored)
    assert all("user:owner" in row and "run-1" in row for row in stored)  # the rest: plain
