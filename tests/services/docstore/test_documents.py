"""Documents over real HTTP: versions, concurrency, idempotency, metadata, deletes,
relations, bulk ingest and bad input, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from keyed import created_once
from llmdocs.core.errors import PROBLEM_JSON
from services.docstore.conftest import Store


async def test_versions_if_match_diff_and_rollback(store: Store) -> None:
    doc = await store.put("line one\nline two\n", title="Guide", source="repo")
    doc_id = doc["document_id"]
    assert doc["version"] == 1 and len(doc["content_hash"]) == 64

    second = await store.http.put(f"/documents/{doc_id}", headers={"If-Match": '"1"'},
                                  json={"content": "line one\nline 2\n", "message": "fix"})
    assert second.status_code == 200 and second.json()["version"] == 2
    stale = await store.http.put(f"/documents/{doc_id}", headers={"If-Match": '"1"'},
                                 json={"content": "lost update"})
    assert stale.status_code == 412 and stale.headers["content-type"] == PROBLEM_JSON
    assert "version 2" in stale.json()["detail"]

    versions = (await store.http.get(f"/documents/{doc_id}/versions")).json()["items"]
    assert [(v["version"], v["is_current"]) for v in versions] == [(2, True), (1, False)]
    assert versions[1]["content_hash"] == doc["content_hash"]
    old = (await store.http.get(f"/documents/{doc_id}/versions/1")).json()
    assert old["content"] == "line one\nline two\n"
    diff = (await store.http.get(f"/documents/{doc_id}/diff",
                                 params={"from": 1, "to": 2})).json()
    assert "-line two\n" in diff["diff"] and "+line 2\n" in diff["diff"]
    assert not diff["identical"]

    back = await store.http.post(f"/documents/{doc_id}/rollback", json={"version": 1},
                                 headers={"If-Match": '"2"'})
    assert back.status_code == 200
    assert back.json()["version"] == 3 and back.json()["content_hash"] == doc["content_hash"]
    current = await store.http.get(f"/documents/{doc_id}")
    assert current.headers["etag"] == '"3"' and current.json()["content"] == "line one\nline two\n"
    assert (await store.http.get(f"/documents/{doc_id}/diff",
                                 params={"from": 1, "to": 3})).json()["identical"]
    missing = await store.http.get(f"/documents/{doc_id}/versions/9")
    assert missing.status_code == 404


async def test_identical_content_is_idempotent_and_keys_replay(store: Store) -> None:
    first = await store.http.post("/documents", json={"content": "same", "source": "a"})
    again = await store.http.post("/documents", json={"content": "same", "source": "a"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["document_id"] == first.json()["document_id"]
    assert again.json()["created"] is False
    other_source = await store.http.post("/documents", json={"content": "same", "source": "b"})
    forced = await store.http.post("/documents", params={"dedupe": "false"},
                                   json={"content": "same", "source": "a"})
    ids = {first.json()["document_id"], other_source.json()["document_id"],
           forced.json()["document_id"]}
    assert len(ids) == 3 and forced.status_code == 201

    made = await created_once(store.http, "/documents?dedupe=false",
                              {"content": "keyed", "source": "k"},
                              {"content": "different", "source": "k"}, "/documents?source=k")
    listed = (await store.http.get("/documents", params={"source": "k"})).json()["items"]
    assert [item["document_id"] for item in listed] == [made["document_id"]]


async def test_metadata_tags_filters_and_deletes(store: Store) -> None:
    a = await store.put("alpha doc", title="A", source="s1", format="txt", author="ann",
                        metadata={"team": "core", "tier": "1"}, tags=["api", "v1"])
    b = await store.put("beta doc", title="B", source="s2", author="bob",
                        metadata={"team": "web"}, tags=["api"])
    patched = await store.http.patch(f"/documents/{a['document_id']}",
                                     json={"metadata": {"tier": None, "owner": "ann"},
                                           "tags": ["v2", "api"]})
    assert patched.status_code == 200
    assert patched.json()["metadata"] == {"team": "core", "owner": "ann"}
    assert patched.json()["tags"] == ["api", "v2"]

    async def ids(**params: Any) -> list[str]:
        answer = await store.http.get("/documents", params=params)
        assert answer.status_code == 200, answer.text
        return [d["document_id"] for d in answer.json()["items"]]

    assert await ids(tag="api", sort="title") == [a["document_id"], b["document_id"]]
    assert await ids(tag=["api", "v2"]) == [a["document_id"]]
    assert await ids(**{"metadata.team": "web"}) == [b["document_id"]]
    assert await ids(source="s1", format="txt", author="ann") == [a["document_id"]]
    assert await ids(created_before=a["created_at"]) == []
    assert set(await ids(created_after=a["created_at"])) == {a["document_id"], b["document_id"]}

    deleted = await store.http.delete(f"/documents/{a['document_id']}")
    assert deleted.status_code == 204
    assert (await store.http.get(f"/documents/{a['document_id']}")).status_code == 404
    assert await ids() == [b["document_id"]]
    assert await ids(deleted="only") == [a["document_id"]]
    assert (await store.http.delete(f"/documents/{a['document_id']}")).status_code == 409
    restored = await store.http.post(f"/documents/{a['document_id']}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None

    hard = await store.http.delete(f"/documents/{a['document_id']}", params={"hard": "true"})
    assert hard.status_code == 403 and "docs:admin" in hard.json()["detail"]
    admin = await store.http.delete(f"/documents/{a['document_id']}", params={"hard": "true"},
                                    headers=store.headers("docs:write", "docs:admin"))
    assert admin.status_code == 204
    gone = await store.http.get(f"/documents/{a['document_id']}",
                                params={"include_deleted": "true"})
    assert gone.status_code == 404


async def test_cursor_pagination_walks_every_document_once(store: Store) -> None:
    made = [(await store.put(f"doc {i}", title=f"t{i % 3}-{i}"))["document_id"]
            for i in range(7)]
    for sort, expected in (("-created_at", made[::-1]),
                           ("title", [d for _, d in sorted(
                               (f"t{i % 3}-{i}", d) for i, d in enumerate(made))])):
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 3, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = (await store.http.get("/documents", params=params)).json()
            seen += [d["document_id"] for d in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected, sort


async def test_provenance_relations_and_lineage(store: Store) -> None:
    spec = await store.put('{"openapi": "3.1.0"}', title="users spec", format="json")
    outline = await store.put("outline", title="outline",
                              relations=[{"type": "derived_from",
                                          "target_id": spec["document_id"]}])
    record = {"inputs": [{"document_id": spec["document_id"], "version": 1,
                          "content_hash": spec["content_hash"]}],
              "calls": [{"provider": "local", "model": "smollm2", "tokens": 123}]}
    final = await store.put("# Users API", title="Users API", provenance=record,
                            relations=[{"type": "derived_from",
                                        "target_id": outline["document_id"]},
                                       {"type": "references",
                                        "target_id": spec["document_id"]}])
    prov = (await store.http.get(f"/documents/{final['document_id']}/provenance")).json()
    assert prov["provenance"] == record and prov["version"] == 1
    assert {(r["type"], r["target_id"]) for r in prov["relations"]["outgoing"]} == {
        ("derived_from", outline["document_id"]), ("references", spec["document_id"])}
    incoming = (await store.http.get(f"/documents/{spec['document_id']}/relations")).json()
    assert {r["source_id"] for r in incoming["incoming"]} == {outline["document_id"],
                                                             final["document_id"]}

    up = (await store.http.get(f"/documents/{final['document_id']}/lineage")).json()
    assert [(n["document_id"], n["depth"]) for n in up["nodes"]] == [
        (outline["document_id"], 1), (spec["document_id"], 2)]
    down = (await store.http.get(f"/documents/{spec['document_id']}/lineage",
                                 params={"direction": "down"})).json()
    assert [n["document_id"] for n in down["nodes"]] == [outline["document_id"],
                                                         final["document_id"]]
    unknown = await store.http.post(f"/documents/{final['document_id']}/relations",
                                    json={"type": "supersedes", "target_id": "nope"})
    assert unknown.status_code == 422
    removed = await store.http.delete(
        f"/documents/{final['document_id']}/relations/references/{spec['document_id']}")
    assert removed.status_code == 204


async def test_bulk_ndjson_answers_every_line(store: Store) -> None:
    lines = [json.dumps({"content": "bulk one", "source": "imp", "tags": ["b"]}),
             json.dumps({"content": "bulk two", "source": "imp"}),
             "{not json",
             "",
             json.dumps({"content": "bulk one", "source": "imp"}),
             json.dumps({"title": "no content"}),
             json.dumps({"content": "bulk three", "source": "imp",
                         "relations": [{"type": "references", "target_id": "missing"}]}),
             json.dumps({"content": "bulk four", "source": "imp"})]

    async def body() -> Any:
        for line in lines:
            yield (line + "\n").encode()

    answer = await store.http.post("/documents/bulk", content=body(),
                                   headers={"content-type": "application/x-ndjson"})
    assert answer.status_code == 200
    results = [json.loads(line) for line in answer.text.splitlines()]
    by_line = {r["line"]: r for r in results}
    assert sorted(by_line) == [1, 2, 3, 5, 6, 7, 8]
    assert [by_line[n]["status"] for n in (1, 2, 3, 5, 6, 7, 8)] == [
        201, 201, 422, 200, 422, 422, 201]
    assert by_line[5]["document_id"] == by_line[1]["document_id"]
    assert "content" in by_line[6]["error"] and "missing" in by_line[7]["error"]
    listed = (await store.http.get("/documents", params={"source": "imp"})).json()["items"]
    assert len(listed) == 3
    hits = (await store.http.get("/search", params={"q": "bulk", "tag": "b"})).json()["items"]
    assert [h["document_id"] for h in hits] == [by_line[1]["document_id"]]
