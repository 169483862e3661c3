"""Bad input to the doc-store's writes on PostgreSQL, each once a 500: text with a NUL
or a lone surrogate, metadata or provenance PostgreSQL or a JSON reader cannot take
(a stored lone surrogate made the document unreadable), JSON nested too deeply to
parse, numbers past a version's column, a NUL in a path. Each is a 4xx naming the
field and the document stays as it was; a new version naming its relations again is
no longer a duplicate-key 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from badinput import HUGE_INT, JSON_VALUES, NUL, TEXT, assert_refused, send
from llmdocs.core.config import Settings
from services.docstore.conftest import Store, start_store

DOC: dict[str, Any] = {"content": "hello", "title": "t", "source": "s", "author": "a",
                       "message": "m", "metadata": {"k": "v"}, "provenance": {"p": 1}}


@pytest.fixture
async def pg_store(serve: Any, settings: Settings, pg_url: str) -> AsyncIterator[Store]:
    async for handle in start_store(serve, settings, pg_url):
        yield handle


async def current(store: Store, doc_id: str) -> dict[str, Any]:
    answer = await store.http.get(f"/documents/{doc_id}")
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


@pytest.mark.parametrize("kind", sorted(TEXT))
async def test_text_a_column_cannot_hold_is_a_422(pg_store: Store, kind: str) -> None:
    target = await pg_store.put("other")
    doc = await pg_store.put(**DOC, relations=[{"type": "references",
                                                 "target_id": target["document_id"]}])
    url = f"/documents/{doc['document_id']}"
    before = await current(pg_store, doc["document_id"])
    bad = TEXT[kind]
    for field in ["content", "title", "source", "author", "message"]:
        assert_refused(await send(pg_store.http, "POST", "/documents",
                                  {**DOC, field: bad}), field)
    for field in ["content", "title", "message"]:
        assert_refused(await send(pg_store.http, "PUT", url, {"content": "new", field: bad}),
                       field)
    relation = [{"type": "references", "target_id": bad}]
    assert_refused(await send(pg_store.http, "PUT", url,
                              {"content": "new", "relations": relation}), "target_id")
    assert_refused(await send(pg_store.http, "POST", f"{url}/relations", relation[0]),
                   "target_id")
    for field in ["source", "author"]:
        assert_refused(await send(pg_store.http, "PATCH", url, {field: bad}), field)
    assert_refused(await send(pg_store.http, "POST", f"{url}/rollback",
                              {"version": 1, "message": bad}), "message")
    if kind == "nul":  # a form field is UTF-8: a lone surrogate cannot be sent in one
        form = await pg_store.http.post("/documents", files={"file": ("a.txt", b"hi")},
                                        data={"title": bad})
        assert_refused(form, "title")
    assert await current(pg_store, doc["document_id"]) == before


async def test_metadata_and_provenance_hold_only_storable_json(pg_store: Store) -> None:
    doc = await pg_store.put(**DOC)
    url = f"/documents/{doc['document_id']}"
    before = await current(pg_store, doc["document_id"])
    for value in JSON_VALUES.values():
        assert_refused(await send(pg_store.http, "POST", "/documents",
                                  {**DOC, "metadata": value}), "metadata")
        assert_refused(await send(pg_store.http, "PUT", url,
                                  {"content": "new", "provenance": value}), "provenance")
        assert_refused(await send(pg_store.http, "PATCH", url, {"metadata": value}),
                       "metadata")
    # the document is still there and readable, as it was
    assert await current(pg_store, doc["document_id"]) == before


async def test_numbers_paths_and_bodies_past_their_bounds_are_refused(pg_store: Store) -> None:
    doc = await pg_store.put(**DOC)
    url = f"/documents/{doc['document_id']}"
    before = await current(pg_store, doc["document_id"])
    assert_refused(await send(pg_store.http, "POST", f"{url}/rollback",
                              {"version": HUGE_INT}), "version")
    nested = b'{"content": "x", "metadata": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001
    for method, to in [("POST", "/documents"), ("PUT", url)]:
        answer = await pg_store.http.request(method, to, content=nested,
                                             headers={"content-type": "application/json"})
        assert_refused(answer, "body")
    stale = await pg_store.http.put(url, json={"content": "new"},
                                    headers={"If-Match": '"' + "9" * 40 + '"'})
    assert_refused(stale, "If-Match", status=400)
    for method in ["GET", "PUT", "PATCH", "DELETE"]:
        answer = await pg_store.http.request(method, "/documents/a%00b",
                                             json={"content": "x"})
        assert_refused(answer, "document_id")
    assert await current(pg_store, doc["document_id"]) == before


async def test_a_new_version_may_name_its_relations_again(pg_store: Store) -> None:
    target = await pg_store.put("other")
    relation = {"type": "references", "target_id": target["document_id"]}
    doc = await pg_store.put("first", relations=[relation])
    url = f"/documents/{doc['document_id']}"
    again = await pg_store.http.put(url, json={"content": "second", "relations": [relation]})
    assert again.status_code == 200, again.text
    relations = (await pg_store.http.get(f"{url}/relations")).json()
    assert [(r["type"], r["target_id"]) for r in relations["outgoing"]] == [
        ("references", target["document_id"])]
    missing = await pg_store.http.put(url, json={"content": "third", "relations": [
        relation, {"type": "references", "target_id": "no-such-document"}]})
    assert missing.status_code == 422, missing.text
    assert "no-such-document" in missing.json()["detail"]


async def test_a_listing_filter_a_column_cannot_hold_is_refused(pg_store: Store) -> None:
    for path, query in [("/documents", {}), ("/search", {"q": "hello"})]:
        for name in ["source", "format", "tag", "author"]:
            assert_refused(await pg_store.http.get(path, params={**query, name: NUL}), name)
        for name in ["created_after", "created_before"]:
            assert_refused(await pg_store.http.get(
                path, params={**query, name: "9999-12-31T23:59:59-14:00"}), name)
        assert_refused(await pg_store.http.get(path, params={**query, "metadata.k": NUL}),
                       "metadata.k", status=400)


async def test_a_version_past_its_column_is_refused_on_reads(pg_store: Store) -> None:
    doc = await pg_store.put(**DOC)
    url = f"/documents/{doc['document_id']}"
    for path, field in [(f"{url}?version={HUGE_INT}", "version"),
                        (f"{url}/download?version={HUGE_INT}", "version"),
                        (f"{url}/provenance?version={HUGE_INT}", "version"),
                        (f"{url}/versions/{HUGE_INT}", "version"),
                        (f"{url}/diff?from=1&to={HUGE_INT}", "to")]:
        assert_refused(await pg_store.http.get(path), field)
