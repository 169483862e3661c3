"""The same search cases on SQLite (FTS5, bm25) and PostgreSQL (tsvector, IDF-weighted)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from services.docstore.conftest import Store, start_store


async def search(store: Store, q: str, **params: Any) -> list[dict[str, Any]]:
    answer = await store.http.get("/search", params={"q": q, **params})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def scalar(url: str, sql: str) -> Any:
    """One value from the database, on a connection of its own (not the store's pool)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(sa.text(sql))).scalar_one()
    finally:
        await engine.dispose()


async def test_rare_terms_weigh_more_and_titles_more_than_bodies(store: Store) -> None:
    for i in range(8):
        await store.put(f"alpha filler text number {i}", title=f"filler {i}")
    common_heavy = await store.put("alpha alpha alpha alpha zeta", title="one")
    rare_heavy = await store.put("alpha zeta zeta zeta zeta", title="two")
    hits = await search(store, "alpha zeta")
    assert [h["document_id"] for h in hits] == [rare_heavy["document_id"],
                                                common_heavy["document_id"]]
    assert hits[0]["score"] > hits[1]["score"]

    body_only = await store.put("the kraken appears in the body once", title="sea notes")
    in_title = await store.put("a story about the deep sea", title="Kraken")
    ranked = [h["document_id"] for h in await search(store, "kraken")]
    assert ranked == [in_title["document_id"], body_only["document_id"]]


async def test_stemming_snippets_and_only_current_live_versions(store: Store) -> None:
    doc = await store.put("The service runs nightly and reports its findings.",
                          title="Nightly job", tags=["ops"], source="wiki")
    hits = await search(store, "running reports")
    assert [h["document_id"] for h in hits] == [doc["document_id"]]
    assert "<mark>" in hits[0]["snippet"] and "</mark>" in hits[0]["snippet"]
    assert hits[0]["tags"] == ["ops"] and hits[0]["version"] == 1

    await store.http.put(f"/documents/{doc['document_id']}",
                         json={"content": "Replaced by a weekly cron schedule."})
    assert await search(store, "nightly findings") == []
    assert [h["version"] for h in await search(store, "weekly cron")] == [2]
    await store.http.delete(f"/documents/{doc['document_id']}")
    assert await search(store, "weekly cron") == []


async def test_filters_apply_to_matches_and_pages_do_not_repeat(store: Store) -> None:
    for i in range(6):  # so that "gamma" is not in every document: its IDF stays positive
        await store.put(f"unrelated delta {i}")
    made = {}
    for i in range(5):
        made[i] = await store.put(f"gamma report {i} " + "gamma " * i, source=f"s{i % 2}",
                                  tags=["even"] if i % 2 == 0 else ["odd"],
                                  metadata={"n": str(i)})
    assert {h["document_id"] for h in await search(store, "gamma", tag="odd")} == {
        made[1]["document_id"], made[3]["document_id"]}
    assert [h["document_id"] for h in await search(store, "gamma", **{"metadata.n": "4"})] == [
        made[4]["document_id"]]
    assert len(await search(store, "gamma", source="s0")) == 3

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": "gamma", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await store.http.get("/search", params=params)).json()
        seen += [h["document_id"] for h in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 5 and len(set(seen)) == 5
    assert seen[0] == made[4]["document_id"]  # the most gammas ranks first

    for status, bad in ((422, {"q": "gamma", "cursor": "%%%"}), (400, {"q": "!!! ???"}),
                        (400, {"q": "gamma", "metadata.bad key": "x"})):
        answer = await store.http.get("/search", params=bad)
        assert answer.status_code == status, bad
        assert answer.headers["content-type"] == "application/problem+json"


async def test_bulk_import_is_searchable_at_once_and_refreshes_planner_statistics(
        store: Store) -> None:
    lines = [json.dumps({"content": f"common filler words line {i}" + (
        " quokka" if i == 1234 else ""), "title": f"doc {i}", "source": "imp",
        "tags": ["z", "a"] if i == 1234 else []}) for i in range(1500)]
    answer = await store.http.post("/documents/bulk", content="\n".join(lines).encode(),
                                   headers={"content-type": "application/x-ndjson"})
    results = [json.loads(line) for line in answer.text.splitlines()]
    assert [r["line"] for r in results] == list(range(1, 1501))
    assert {r["status"] for r in results} == {201}

    hits = await search(store, "quokka")
    assert [(h["title"], h["tags"]) for h in hits] == [("doc 1234", ["a", "z"])]
    assert "<mark>quokka</mark>" in hits[0]["snippet"]
    page = (await store.http.get("/search", params={"q": "filler", "limit": 100})).json()
    assert len(page["items"]) == 100 and page["next_cursor"]

    if store.settings.database_url.startswith("postgresql"):
        rows = await scalar(store.settings.database_url, "SELECT reltuples FROM pg_class "
                            "WHERE relname = 'docstore_versions'")
        assert rows == 1500  # a search right after an import is planned from real counts


async def test_soft_delete_restore_and_hard_delete_keep_the_index_exact(store: Store) -> None:
    keep = await store.put("the narwhal stays", title="keeper")
    gone = await store.put("the narwhal leaves, then returns", title="wanderer")
    doc = f"/documents/{gone['document_id']}"
    assert (await store.http.delete(doc)).status_code == 204
    assert [h["title"] for h in await search(store, "narwhal")] == ["keeper"]
    assert (await store.http.post(f"{doc}/restore")).status_code == 200
    hits = await search(store, "returns narwhal")
    assert [h["title"] for h in hits] == ["wanderer"] and "<mark>" in hits[0]["snippet"]

    await store.http.delete(doc)  # soft, then hard: the index drops it exactly once
    erased = await store.http.delete(doc, params={"hard": "true"},
                                     headers=store.headers("docs:write", "docs:admin"))
    assert erased.status_code == 204
    assert [h["document_id"] for h in await search(store, "narwhal")] == [keep["document_id"]]
    if store.settings.database_url.startswith("sqlite"):
        path = store.settings.database_url.split("///", 1)[1]
        with sqlite3.connect(path) as conn:  # raises if the FTS index and table disagree
            # the index reads contents through llmdocs_plain() (they may be encrypted;
            # here they are not), as every connection of the service registers it
            conn.create_function("llmdocs_plain", 1, lambda value: value)
            conn.execute("INSERT INTO docstore_fts(docstore_fts, rank) "
                         "VALUES ('integrity-check', 1)")


async def test_a_search_after_the_server_closed_pooled_connections(
        serve: Any, settings: Any, pg_url: str) -> None:
    """The pool hands out no connection PostgreSQL has closed (it checks without a
    round trip): a search right after every backend ended (terminated, with a wait for
    each to exit) still answers."""
    async for store in start_store(serve, settings, pg_url):
        await store.put("the heron waits", title="heron")
        assert len(await search(store, "heron")) == 1  # the pool now holds a connection
        killed = await scalar(pg_url, "SELECT count(pg_terminate_backend(pid, 5000)) "
                              "FROM pg_stat_activity WHERE datname = current_database() "
                              "AND pid <> pg_backend_pid()")
        assert killed >= 1
        assert [h["title"] for h in await search(store, "heron")] == ["heron"]


async def test_a_bulk_import_leaves_no_pending_index_entries(
        serve: Any, settings: Any, pg_url: str) -> None:
    """New GIN entries wait in the index's pending list, which every search scans in
    full; a bulk request merges them before it answers."""
    async for store in start_store(serve, settings, pg_url):
        body = "".join(json.dumps({"content": f"otter report {i}", "source": "bulk"}) + "\n"
                       for i in range(50))
        answer = await store.http.post("/documents/bulk", content=body,
                                       headers={"content-type": "application/x-ndjson"})
        assert answer.status_code == 200 and answer.text.count('"status":201') == 50
        pending = await scalar(
            pg_url, "SELECT gin_clean_pending_list('ix_docstore_versions_search')")
        assert pending == 0
        assert len(await search(store, "otter")) == 20
