"""Binary artifacts and the blob store: downloads, conditional requests, transactional
writes under real failures, bad input, S3 (a real S3 wire-protocol server) and events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import boto3  # type: ignore[import-untyped]
import httpx
import pytest
from moto.server import ThreadedMotoServer

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.errors import PROBLEM_JSON
from llmdocs.core.events import Event
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from services.docstore.conftest import Store, start_store

PDF = b"%PDF-1.4\n\x00\xff\xfe binary body\n%%EOF"


async def upload(store: Store, data: bytes, name: str, path: str = "/documents",
                 method: str = "POST", headers: dict[str, str] | None = None,
                 **fields: str) -> httpx.Response:
    return await store.http.request(method, path, files={"file": (name, data, "application/pdf")},
                                    data=fields, headers=headers)


async def test_binary_download_head_and_conditional_get(sqlite_store: Store) -> None:
    store = sqlite_store
    made = await upload(store, PDF, "Bericht für Q3.pdf", tags="report,q3")
    assert made.status_code == 201
    doc = made.json()
    assert doc["kind"] == "binary" and doc["format"] == "pdf" and doc["size"] == len(PDF)
    meta = (await store.http.get(f"/documents/{doc['document_id']}")).json()
    assert meta["content"] is None
    assert meta["content_url"] == f"/documents/{doc['document_id']}/download"

    got = await store.http.get(meta["content_url"])
    assert got.content == PDF and got.headers["content-type"] == "application/pdf"
    assert got.headers["etag"] == f'"{doc["content_hash"]}"'
    assert "filename*=UTF-8''Bericht%20f%C3%BCr%20Q3.pdf" in got.headers["content-disposition"]
    head = await store.http.head(meta["content_url"])
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(PDF))
    cached = await store.http.get(meta["content_url"],
                                  headers={"If-None-Match": got.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""

    text = await store.put("plain *markdown*", title="notes")
    text_dl = await store.http.get(f"/documents/{text['document_id']}/download")
    assert text_dl.text == "plain *markdown*"
    assert text_dl.headers["content-type"] == "text/markdown; charset=utf-8"


async def test_writes_leave_no_orphan_blob_and_no_row_without_blob(store: Store) -> None:
    # a relation to a document that does not exist fails inside the transaction,
    # after the blob was written: the blob must go too
    failed = await upload(store, PDF, "a.pdf",
                          relations='[{"type": "derived_from", "target_id": "nope"}]')
    assert failed.status_code == 422 and "nope" in failed.json()["detail"]
    assert store.blob_files() == []
    assert (await store.http.get("/documents")).json()["items"] == []

    doc = (await upload(store, PDF, "a.pdf")).json()
    path = f"/documents/{doc['document_id']}"
    stale = await upload(store, PDF + b"v2", "a.pdf", path=path, method="PUT",
                         headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    assert len(store.blob_files()) == 1

    # the blob store cannot write: nothing reaches the database
    text = await store.put("will be binary later")
    store.blobs.mkdir(parents=True, exist_ok=True)
    (store.blobs / text["document_id"]).write_text("a file where a directory must go")
    blocked = await upload(store, PDF, "b.pdf", path=f"/documents/{text['document_id']}",
                           method="PUT")
    assert blocked.status_code == 503 and blocked.headers["content-type"] == PROBLEM_JSON
    versions = (await store.http.get(f"/documents/{text['document_id']}/versions")).json()
    assert [v["version"] for v in versions["items"]] == [1]
    assert len(store.blob_files()) == 2  # the first PDF and the blocking file, nothing else

    second = await upload(store, b"second pdf", "a.pdf", path=path, method="PUT")
    assert second.status_code == 200 and len(store.blob_files()) == 3
    back = await store.http.post(f"{path}/rollback", json={"version": 1})
    assert back.json()["content_hash"] == doc["content_hash"]
    assert (await store.http.get(f"{path}/download")).content == PDF
    assert len(store.blob_files()) == 3  # a rollback shares the old blob
    erased = await store.http.delete(path, params={"hard": "true"},
                                     headers=store.headers("docs:admin", "docs:write"))
    assert erased.status_code == 204
    assert [p.name for p in store.blob_files()] == [text["document_id"]]


async def test_bad_input_is_a_clear_problem_and_stores_nothing(sqlite_store: Store) -> None:
    store = sqlite_store
    cases: list[tuple[int, Any]] = [
        (413, store.http.post("/documents", json={"content": "x" * 100_001})),
        (413, upload(store, b"x" * 100_001, "big.pdf")),
        (422, upload(store, b"caf\xe9 au lait", "menu.md")),
        (422, upload(store, PDF, "../../etc/passwd.pdf")),
        (422, upload(store, PDF, "..\\windows\\evil.pdf")),
        (422, store.http.post("/documents", json={"content": "x", "format": "pdf"})),
        (422, store.http.post("/documents", json={"content": "x", "tags": ["bad tag!"]})),
        (422, store.http.post("/documents", content=b"{oops",
                              headers={"content-type": "application/json"})),
        (415, store.http.post("/documents", content=b"x", headers={"content-type": "text/plain"})),
        (404, store.http.get("/documents/01a00000-0000-7000-8000-000000000000")),
        (404, store.http.put("/documents/unknown", json={"content": "x"})),
        (400, store.http.put("/documents/unknown", json={"content": "x"},
                             headers={"If-Match": "banana"})),
        (400, store.http.get("/documents", params={"sort": "password"})),
        (422, store.http.get("/documents", params={"cursor": "bm90IGpzb24"})),
        (422, store.http.get("/documents", params={"limit": 0})),
        (401, store.http.get("/documents", headers={"Authorization": ""})),
        (403, store.http.post("/documents", json={"content": "x"},
                              headers=store.headers("docs:read"))),
    ]
    for expected, call in cases:
        answer = await call
        assert answer.status_code == expected, (expected, answer.text)
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert answer.json()["detail"]
    assert (await store.http.get("/documents", params={"deleted": "include"})
            ).json()["items"] == []
    assert store.blob_files() == []


async def test_a_file_for_an_id_no_document_has_is_a_404(sqlite_store: Store) -> None:
    """Ids are the store's own, so one with characters a blob key cannot hold names no
    document: a file sent to it is a 404 as for any unknown id (it was a 503 saying the
    blob store had failed, found by schemathesis)."""
    for doc_id in ["a\\b", "a\x1fb", "a b", "ünï", "a.b"]:
        answer = await upload(sqlite_store, PDF, "a.pdf", method="PUT",
                              path=f"/documents/{quote(doc_id, safe='')}")
        assert answer.status_code == 404, (doc_id, answer.text)
        assert answer.json()["detail"] == f"No document {doc_id!r}."
    assert sqlite_store.blob_files() == []


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3-compatible HTTP server on loopback (the S3 wire protocol, locally)."""
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


async def test_s3_blob_store(serve: Any, settings: Settings, sqlite_url: str, s3_server: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket="artifacts")
    monkeypatch.setenv("LLMDOCS_DOCSTORE_BLOB_URL", "s3://artifacts/llmdocs")
    monkeypatch.setenv("LLMDOCS_DOCSTORE_S3_ENDPOINT_URL", s3_server)
    async for store in start_store(serve, settings, sqlite_url):
        doc = (await upload(store, PDF, "s3.pdf")).json()
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="artifacts")["Contents"]]
        assert len(keys) == 1 and keys[0].startswith(f"llmdocs/{doc['document_id']}/")
        assert (await store.http.get(f"/documents/{doc['document_id']}/download")).content == PDF
        health = (await store.http.get("/health")).json()
        assert {d["name"]: d["status"] for d in health["dependencies"]}["blobs"] == "up"
        await store.http.delete(f"/documents/{doc['document_id']}", params={"hard": "true"},
                                headers=store.headers("docs:*"))
        assert s3.list_objects_v2(Bucket="artifacts").get("KeyCount") == 0
        assert store.blob_files() == []


async def test_events_carry_id_version_hash_source_and_correlation(
        serve: Any, settings: Settings, sqlite_url: str) -> None:
    settings.database_url = sqlite_url
    app = create_app("docstore", settings)
    running = await serve(app)
    seen: list[Event] = []
    done = asyncio.Event()

    async def handler(event: Event) -> None:
        seen.append(event)
        if event.type == "llmdocs.document.deleted":
            done.set()

    sub = app.state.resources.events.subscribe(
        "test", handler, types=["llmdocs.document.stored", "llmdocs.document.updated",
                                "llmdocs.document.deleted"])
    token = {"Authorization": f"Bearer {issue_token(settings, 'user:t', ['docs:*'])}"}
    async with httpx.AsyncClient(base_url=running.url, headers=token) as http:
        doc = (await http.post("/documents", json={"content": "v1", "source": "git"},
                               headers={"X-Correlation-ID": "corr-1"})).json()
        await http.put(f"/documents/{doc['document_id']}", json={"content": "v2"})
        await http.delete(f"/documents/{doc['document_id']}")
        await asyncio.wait_for(done.wait(), 15)
    await sub.stop()
    assert [(e.type, e.data["version"]) for e in seen] == [
        ("llmdocs.document.stored", 1), ("llmdocs.document.updated", 2),
        ("llmdocs.document.deleted", 2)]
    stored = seen[0]
    assert stored.subject == doc["document_id"] and stored.data["id"] == doc["document_id"]
    assert stored.data["content_hash"] == doc["content_hash"] and stored.data["source"] == "git"
    assert stored.correlationid == "corr-1" and stored.data["correlation_id"] == "corr-1"
