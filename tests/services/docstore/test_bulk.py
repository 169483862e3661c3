"""The bulk NDJSON path over real HTTP on both databases, with batches of three lines so
that every batch boundary case is met: duplicates inside a batch and across batches, a
bad line in the middle of a batch (alone, or failing the batch's insert so that its
lines are stored one by one), and one stored event per stored document."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.events import Event
from llmdocs.services import create_app
from llmdocs.services.docstore import bulk

LINES = [
    {"content": "alpha", "source": "chunks"},  # 1: batch 1
    {"content": "beta", "source": "chunks"},  # 2
    {"content": "alpha", "source": "chunks"},  # 3: duplicate of 1 inside its batch
    "{not json",  # 4: never reaches a batch
    {"content": "nul \u0000 byte", "source": "chunks"},  # 5: no column holds a NUL
    {"content": "beta", "source": "chunks"},  # 6: duplicate of 2, an earlier batch
    {"content": "delta", "source": "chunks"},  # 7
    {"content": "epsilon", "source": "chunks",  # 8: batch 3; fails the batch's insert
     "relations": [{"type": "references", "target_id": "missing"}]},
    {"content": "phi", "source": "chunks"},  # 9
    {"content": "phi", "source": "chunks"},  # 10: duplicate inside a batch stored line by line
    {"content": "gamma", "source": "chunks"},  # 11: batch 4, the short last one
]


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "BULK_BATCH", 3)


async def test_batches_dedupe_isolate_bad_lines_and_publish_one_event_per_document(
        small_batches: None, serve: Any, settings: Settings, database_url: str) -> None:
    settings.database_url = database_url
    app = create_app("docstore", settings)
    running = await serve(app)
    stored: dict[str, Event] = {}
    expected = 5
    all_in = asyncio.Event()

    async def handler(event: Event) -> None:
        assert event.subject not in stored, "one event per stored document"
        stored[str(event.subject)] = event
        if len(stored) == expected:
            all_in.set()

    sub = app.state.resources.events.subscribe("bulk-test", handler,
                                               types=["llmdocs.document.stored"])
    token = issue_token(settings, "user:t", ["docs:read", "docs:write"])
    body = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                   for line in LINES)
    async with httpx.AsyncClient(base_url=running.url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        answer = await http.post("/documents/bulk", content=body.encode(),
                                 headers={"content-type": "application/x-ndjson",
                                          "X-Correlation-ID": "import-7"})
        assert answer.status_code == 200
        by_line = {r["line"]: r for r in map(json.loads, answer.text.splitlines())}
        assert sorted(by_line) == list(range(1, 12))
        assert {n: r["status"] for n, r in by_line.items()} == {
            1: 201, 2: 201, 3: 200, 4: 422, 5: 422, 6: 200, 7: 201,
            8: 422, 9: 201, 10: 200, 11: 201}
        for dup, first in ((3, 1), (6, 2), (10, 9)):
            assert by_line[dup]["document_id"] == by_line[first]["document_id"]
            assert by_line[dup]["created"] is False
        assert "missing" in by_line[8]["error"]

        # nothing half-stored: exactly the 201 lines are documents, each whole
        created = {r["document_id"]: n for n, r in by_line.items() if r["status"] == 201}
        listed = (await http.get("/documents", params={"source": "chunks"})).json()["items"]
        assert {d["document_id"] for d in listed} == set(created)
        for doc_id, n in created.items():
            doc = (await http.get(f"/documents/{doc_id}")).json()
            assert doc["content"] == LINES[n - 1]["content"]
            assert doc["content_hash"] == by_line[n]["content_hash"]
        hits = (await http.get("/search", params={"q": "phi"})).json()["items"]
        assert [h["document_id"] for h in hits] == [by_line[9]["document_id"]]
        phi = (await http.get(f"/documents/{by_line[9]['document_id']}")).json()
        assert (hits[0]["created_at"], hits[0]["updated_at"], hits[0]["tags"]) == (
            phi["created_at"], phi["updated_at"], [])
        assert hits[0]["snippet"] == "<mark>phi</mark>"

        # a lone surrogate (json.loads takes it) is a clear 422, not a 500
        bad = await http.post("/documents", content=b'{"content": "x\\ud800"}',
                              headers={"content-type": "application/json"})
        assert bad.status_code == 422, bad.text
        assert "content" in bad.json()["detail"] and "surrogate" in bad.json()["detail"]

    await asyncio.wait_for(all_in.wait(), 15)
    await sub.stop()
    assert set(stored) == set(created)
    for doc_id, event in stored.items():
        assert event.data["id"] == doc_id and event.data["version"] == 1
        assert event.data["content_hash"] == by_line[created[doc_id]]["content_hash"]
        assert event.data["source"] == "chunks" and event.correlationid == "import-7"


async def test_large_documents_end_a_batch_by_size(
        sqlite_store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches are cut by bytes as well as lines (a batch of 2,000 documents of 50 MB
    would not fit in memory); a streamed body is cut into lines across chunks."""
    monkeypatch.setattr(bulk, "BULK_BATCH_BYTES", 25_000)
    texts = [f"{n} " + "word " * 2_000 for n in range(7)] + ["0 " + "word " * 2_000]
    lines = [json.dumps({"content": t, "source": "big"}).encode() + b"\n" for t in texts]

    async def stream() -> Any:
        for line in lines:  # chunks that do not end where lines do
            yield line[:5_000]
            yield line[5_000:]

    answer = await sqlite_store.http.post("/documents/bulk", content=stream(),
                                          headers={"content-type": "application/x-ndjson"})
    results = [json.loads(r) for r in answer.text.splitlines()]
    assert [r["line"] for r in results] == list(range(1, 9))
    assert [r["status"] for r in results] == [201] * 7 + [200]
    assert results[7]["document_id"] == results[0]["document_id"]  # across batches
    batches = []  # a batch's documents share the time its transaction stamped
    for r, text in zip(results[:7], texts, strict=False):
        doc = (await sqlite_store.http.get(f"/documents/{r['document_id']}")).json()
        assert doc["content"] == text
        batches.append(doc["created_at"])
    # ~10 KB lines against a 25,000-byte batch: three lines a batch
    assert [batches.index(t) for t in batches] == [0, 0, 0, 3, 3, 3, 6]
