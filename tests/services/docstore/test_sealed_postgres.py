"""Encryption at rest of the doc-store on a real PostgreSQL: contents and versions are
ciphertext in the rows (what `pg_dump` would copy), the search column keeps terms only,
and search still finds and marks up the documents, also after encryption is turned on
over plaintext rows by a rotation."""

from __future__ import annotations

import base64
import itertools
import json
import subprocess  # nosec B404: our own pg_dump, fixed arguments
from typing import Any

import httpx
import sqlalchemy as sa
from pydantic import SecretStr

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.db import Database
from llmdocs.devservers import PostgresServer
from llmdocs.keys import rotate
from llmdocs.services import create_app

MARKER = "the quartermaster hid seventeen violet umbrellas beneath the lighthouse"
KEY = base64.b64encode(b"p" * 32).decode()


def dumped(postgres: PostgresServer, pg_url: str) -> str:
    """The doc-store's rows as `pg_dump` writes them."""
    assert postgres.bindir is not None
    url = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    return subprocess.run(  # nosec B603: fixed arguments, our own server
        [str(postgres.bindir / "pg_dump"), "--data-only", "--table=docstore_*", url],
        check=True, capture_output=True, text=True).stdout


async def raw_contents(pg_url: str) -> list[str]:
    """`content` as stored, read without a ring."""
    database = Database(pg_url)
    try:
        async with database.engine.connect() as conn:
            return list((await conn.execute(sa.text(
                "SELECT content FROM docstore_versions WHERE content IS NOT NULL"))).scalars())
    finally:
        await database.dispose()


def assert_no_sentence(text: str) -> None:
    for pair in itertools.pairwise(MARKER.split()):
        assert " ".join(pair) not in text, pair


async def test_postgres_contents_are_sealed_and_still_found(
        serve: Any, settings: Settings, pg_url: str, postgres: PostgresServer) -> None:
    settings.database_url = pg_url
    settings.encryption_keys = SecretStr(json.dumps({"k1": KEY}))
    headers = {"Authorization": "Bearer " + issue_token(settings, "user:t",
                                                        ["docs:read", "docs:write"])}
    docs = await serve(create_app("docstore", settings))
    async with httpx.AsyncClient(base_url=docs.url, headers=headers, timeout=30) as http:
        made = (await http.post("/documents", json={"content": f"# Notes\n\n{MARKER}.\n",
                                                    "title": "notes"})).json()
        doc_id = made["document_id"]
        changed = await http.put(f"/documents/{doc_id}", json={
            "content": f"# Notes\n\n{MARKER}, again.\n"})
        assert changed.status_code == 200, changed.text
        back = await http.post(f"/documents/{doc_id}/rollback", json={"version": 1})
        assert back.status_code in (200, 201), back.text
        bulk = await http.post("/documents/bulk", content=json.dumps(
            {"content": f"bulk {MARKER}", "source": "bulk"}) + "\n",
            headers={"Content-Type": "application/x-ndjson"})
        assert bulk.status_code in (200, 207), bulk.text
        bulk_id = json.loads(bulk.text.splitlines()[0])["document_id"]

        got = (await http.get(f"/documents/{doc_id}")).json()
        assert got["version"] == 3 and MARKER in got["content"]
        hits = (await http.get("/search", params={"q": "quartermaster umbrellas"})).json()
        assert {hit["document_id"] for hit in hits["items"]} == {doc_id, bulk_id}
        assert all("<mark>" in hit["snippet"] and "umbrellas" in hit["snippet"]
                   for hit in hits["items"])
        # the terms of older versions left the index: one hit per document, the rollback's
        assert len(hits["items"]) == 2
        filtered = (await http.get("/search", params={"q": "lighthouse",
                                                      "source": "bulk"})).json()
        assert [hit["document_id"] for hit in filtered["items"]] == [bulk_id]
        assert "<mark>lighthouse</mark>" in filtered["items"][0]["snippet"]

    stored = await raw_contents(pg_url)
    assert len(stored) == 4 and all(value.startswith("ldenc1:k1:") for value in stored)
    dump = dumped(postgres, pg_url)
    assert_no_sentence(dump)
    assert "quartermast" in dump  # the search column: stemmed terms alone


async def test_turning_encryption_on_keeps_postgres_search(
        serve: Any, settings: Settings, pg_url: str, postgres: PostgresServer) -> None:
    settings.database_url = pg_url
    headers = {"Authorization": "Bearer " + issue_token(settings, "user:t",
                                                        ["docs:read", "docs:write"])}
    plain = await serve(create_app("docstore", settings))
    async with httpx.AsyncClient(base_url=plain.url, headers=headers, timeout=30) as http:
        doc_id = (await http.post("/documents", json={"content": MARKER})).json()[
            "document_id"]
    await plain.stop()
    assert MARKER in dumped(postgres, pg_url)  # written before the ring: plaintext

    ring = settings.data_dir / "ring.json"
    ring.parent.mkdir(parents=True, exist_ok=True)
    ring.write_text(json.dumps({"k1": KEY}))
    settings = Settings(data_dir=settings.data_dir, jwt_secret=settings.jwt_secret,
                        database_url=pg_url, encryption_keys=SecretStr(str(ring)),
                        log_format="console")
    rotation = await rotate(settings, "k2")
    assert rotation.finished and rotation.resealed >= 1
    assert [value[:10] for value in await raw_contents(pg_url)] == ["ldenc1:k2:"]
    assert_no_sentence(dumped(postgres, pg_url))

    sealed = await serve(create_app("docstore", settings))
    async with httpx.AsyncClient(base_url=sealed.url, headers=headers, timeout=30) as http:
        hits = (await http.get("/search", params={"q": "violet lighthouse"})).json()
        assert [hit["document_id"] for hit in hits["items"]] == [doc_id]
        assert "<mark>violet</mark>" in hits["items"][0]["snippet"]
        assert (await http.get(f"/documents/{doc_id}")).json()["content"] == MARKER
