"""Keyed writes go straight to their rows: a retry is caught by the key's row (or by the
document's changed state) and replays the first answer, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from services.docstore.conftest import Store
from tables import execute


async def post(store: Store, body: dict[str, Any], key: str) -> httpx.Response:
    return await store.http.post("/documents", params={"dedupe": "false"}, json=body,
                                 headers={"Idempotency-Key": key})


async def test_keyed_create_replays_refuses_reuse_and_twins_store_once(store: Store) -> None:
    spec = await store.put("openapi: 3.1.0", title="spec", format="yaml", tags=["openapi"])
    body = {"content": "# Generated\n" * 500, "title": "Users API", "source": "orch",
            "tags": ["generated", "api", "api"], "metadata": {"run_id": "r1"},
            "provenance": {"calls": [{"model": "m", "tokens": 3}]},
            "relations": [{"type": "derived_from", "target_id": spec["document_id"]}]}
    made = await post(store, body, "run:1")
    assert made.status_code == 201, made.text
    first = made.json()
    assert first["tags"] == ["api", "generated"] and first["metadata"] == {"run_id": "r1"}
    assert first["version"] == 1 and first["created"] is True

    again = await post(store, body, "run:1")
    assert again.status_code == 201 and again.json() == first  # the first answer
    reused = await post(store, {**body, "content": "other"}, "run:1")
    assert reused.status_code == 422 and "Idempotency-Key" in reused.json()["detail"]

    stored = (await store.http.get(f"/documents/{first['document_id']}")).json()
    assert stored["content"] == body["content"] and stored["provenance"] == body["provenance"]
    assert {k: stored[k] for k in first if k != "created"} == {
        k: v for k, v in first.items() if k != "created"}
    incoming = (await store.http.get(f"/documents/{spec['document_id']}/relations")).json()
    assert [r["source_id"] for r in incoming["incoming"]] == [first["document_id"]]

    twins = await asyncio.gather(*(post(store, {**body, "content": "twin"}, "run:2")
                                   for _ in range(3)))
    assert [t.status_code for t in twins] == [201] * 3  # each waited for the first
    assert len({t.json()["document_id"] for t in twins}) == 1
    listed = (await store.http.get("/documents", params={"source": "orch"})).json()
    assert len(listed["items"]) == 2

    # a day later the key is forgotten: it names a new request
    await execute(store.settings.database_url,
                  "UPDATE docstore_idempotency SET created_at = created_at - INTERVAL '25 hours'"
                  if "postgresql" in store.settings.database_url else
                  "UPDATE docstore_idempotency SET created_at = datetime(created_at, '-25 hours')")
    later = await post(store, {**body, "content": "other"}, "run:1")
    assert later.status_code == 201 and later.json()["document_id"] != first["document_id"]


async def test_failed_keyed_create_stores_nothing_and_leaves_the_key_free(store: Store) -> None:
    body = {"content": "derived", "source": "rel", "tags": ["x"],
            "relations": [{"type": "derived_from", "target_id": "nope"}]}
    missing = await post(store, body, "run:3")
    assert missing.status_code == 422
    assert "do not exist: nope" in missing.json()["detail"]
    assert (await store.http.get("/documents", params={"source": "rel"})).json()["items"] == []

    target = await store.put("target", source="elsewhere")
    fixed = {**body, "relations": [{"type": "references", "target_id": target["document_id"]},
                                   {"type": "derived_from", "target_id": "gone"},
                                   {"type": "derived_from", "target_id": "lost"}]}
    partly = await post(store, fixed, "run:3")
    assert partly.status_code == 422 and "gone, lost" in partly.json()["detail"]
    fixed["relations"] = fixed["relations"][:1]
    made = await post(store, fixed, "run:3")
    assert made.status_code == 201, made.text
    outgoing = (await store.http.get(f"/documents/{made.json()['document_id']}/relations")
                ).json()["outgoing"]
    assert [(r["type"], r["target_id"]) for r in outgoing] == [
        ("references", target["document_id"])]
    listed = (await store.http.get("/documents", params={"tag": "x"})).json()["items"]
    assert [d["document_id"] for d in listed] == [made.json()["document_id"]]


async def test_keyed_update_replays_despite_if_match_and_deletion(store: Store) -> None:
    doc = await store.put("v1", source="upd", tags=["t"])
    path = f"/documents/{doc['document_id']}"

    async def put(content: str, key: str, version: int = 1) -> httpx.Response:
        return await store.http.put(path, json={"content": content, "message": "edit"},
                                    headers={"Idempotency-Key": key,
                                             "If-Match": f'"{version}"'})

    updated = await put("v2", "edit:1")
    assert updated.status_code == 200 and updated.json()["version"] == 2
    assert updated.json()["tags"] == ["t"] and updated.headers["etag"] == '"2"'
    replay = await put("v2", "edit:1")  # the If-Match is stale now: the key answers first
    assert replay.status_code == 200 and replay.json() == updated.json()
    assert (await put("v2", "edit:2")).status_code == 412  # a new key meets the If-Match
    assert (await put("v3", "edit:1", version=2)).status_code == 422  # key reused

    unconditional = await store.http.put(path, json={"content": "v3"},
                                         headers={"Idempotency-Key": "edit:3"})
    assert unconditional.json()["version"] == 3
    again = await store.http.put(path, json={"content": "v3"},
                                 headers={"Idempotency-Key": "edit:3"})
    assert again.json()["version"] == 3  # not a fourth version
    assert (await store.http.delete(path)).status_code == 204
    after_delete = await put("v2", "edit:1")
    assert after_delete.status_code == 200 and after_delete.json()["version"] == 2
    restored = await store.http.post(f"{path}/restore")
    assert restored.json()["version"] == 3
    listed = (await store.http.get(f"{path}/versions")).json()["items"]
    assert [v["version"] for v in listed] == [3, 2, 1]  # the replays stored nothing
