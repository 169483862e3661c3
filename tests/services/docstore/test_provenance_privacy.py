"""A document's provenance named the user it was made for and the session they asked in
to any reader (a hostile review found it): only that user, admins and services see them;
any other reader sees the provenance without them."""

from __future__ import annotations

from typing import Any

import httpx

from llmdocs.core.auth import issue_token, service_token
from services.docstore.conftest import Store

PROVENANCE: dict[str, Any] = {
    "user_context": {"user_id": "user:alice", "session_id": "alice-session",
                     "query": "Create API documentation", "intent": "x"},
    "llm_calls": [{"model": "m", "tokens": 3}]}


def reader(store: Store, subject: str, *scopes: str) -> httpx.AsyncClient:
    token = issue_token(store.settings, subject, scopes or ("docs:read", "docs:write"))
    return httpx.AsyncClient(base_url=store.url, timeout=30,
                             headers={"Authorization": f"Bearer {token}"})


async def provenances(http: httpx.AsyncClient, doc_id: str) -> list[dict[str, Any]]:
    """The provenance as each read of the document shows it."""
    shown = []
    for path, part in ((f"/documents/{doc_id}", "provenance"),
                       (f"/documents/{doc_id}/versions/1", "provenance"),
                       (f"/documents/{doc_id}/provenance", "provenance")):
        answer = await http.get(path)
        assert answer.status_code == 200, answer.text
        shown.append(answer.json()[part])
    return shown


async def test_provenance_shows_who_asked_only_to_them_and_admins(store: Store) -> None:
    async with reader(store, "user:alice") as alice, reader(store, "user:bob") as bob, \
            reader(store, "user:boss", "docs:read", "docs:admin") as admin:
        made = await alice.post("/documents", json={"content": "# Users API",
                                                    "provenance": PROVENANCE})
        assert made.status_code == 201, made.text
        doc_id = made.json()["document_id"]
        for whole in (alice, admin):
            assert await provenances(whole, doc_id) == [PROVENANCE] * 3
        private = {k: v for k, v in PROVENANCE["user_context"].items()
                   if k not in ("user_id", "session_id")}
        assert await provenances(bob, doc_id) == [{**PROVENANCE,
                                                   "user_context": private}] * 3
    # a service reads it whole: the interpreter shows it to its own caller as above
    services = {"Authorization": f"Bearer {service_token(store.settings, 'interpreter')}"}
    answer = await store.http.get(f"/documents/{doc_id}/provenance", headers=services)
    assert answer.json()["provenance"] == PROVENANCE
    # a provenance of any other shape reads as stored; one naming no user as a string
    # names no one who may see its ids
    for i, (odd, seen) in enumerate([
            ({"user_context": "text"}, {"user_context": "text"}),
            ({"user_context": ["user_id"]}, {"user_context": ["user_id"]}), ({"p": 1}, {"p": 1}),
            ({"user_context": {"user_id": 7, "session_id": "s", "q": 1}},
             {"user_context": {"q": 1}})]):
        other = await store.put(f"odd {i}", provenance=odd)
        shown = (await store.http.get(f"/documents/{other['document_id']}/provenance")).json()
        assert shown["provenance"] == seen
