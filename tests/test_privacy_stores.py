"""The stores' part of a privacy request, on SQLite and PostgreSQL, each service an app
of its own: what `GET /privacy/held/{subject}` exports, and `DELETE` with the owned
documents transferred: kept for the receiver, the person's name nowhere in them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.core.privacy import pseudonym
from llmdocs.devservers import free_port
from llmdocs.services import create_app

ALICE, BOB = "user:alice", "user:bob"
STORES = ("docstore", "promptstore", "notification", "logcollector")
GUARD = 30.0


def client(settings: Settings, subject: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=GUARD, headers={
        "Authorization": f"Bearer {issue_token(settings, subject, ['*'])}"})


async def held(http: httpx.AsyncClient, settings: Settings, key: str
               ) -> dict[str, list[dict[str, Any]]]:
    answer = await http.get(f"{settings.url_for(key)}/privacy/held/{ALICE}")
    assert answer.status_code == 200, answer.text
    records: dict[str, list[dict[str, Any]]] = answer.json()["records"]
    return records


async def test_stores_export_then_transfer_and_pseudonymise(
        settings: Settings, serve: Any, database_url: str) -> None:
    settings.database_url = database_url
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES}
                              | {"inprocess_calls": False})
    for key in ("gateway", *STORES):
        await serve(create_app(key, eco), port=eco.port_for(key))
    async with client(eco, ALICE) as alice, client(eco, BOB) as bob:
        mine = await alice.post(f"{eco.url_for('docstore')}/documents", json={
            "title": "Alice's runbook", "content": "Restart the cache first.",
            "format": "markdown", "metadata": {"owner": ALICE}})
        assert mine.status_code == 201, mine.text
        doc_id = mine.json()["document_id"]
        theirs = await bob.post(f"{eco.url_for('docstore')}/documents", json={
            "title": "Bob's notes", "content": "Bob writes.", "format": "markdown"})
        edited = await alice.put(f"{eco.url_for('docstore')}/documents/"
                                 f"{theirs.json()['document_id']}",
                                 json={"content": "Alice edits Bob's notes."})
        assert edited.status_code in (200, 201), edited.text
        prompt = await alice.post(f"{eco.url_for('promptstore')}/api/v1/prompts",
                                  json={"name": "alice-prompt", "content": "Hi {{who}}"})
        assert prompt.status_code == 201, prompt.text
        for user in (ALICE, ALICE + "2"):  # the second is someone else
            logged = await alice.post(f"{eco.url_for('logcollector')}/logs", json={
                "service": "web", "message": "signed in", "attributes": {"user": user}})
            assert logged.status_code == 202, logged.text
        inbox = await alice.post(f"{eco.url_for('notification')}/subscriptions", json={
            "events": ["llmdocs.document.*"], "channel": {"kind": "inbox"}})
        assert inbox.status_code == 201, inbox.text

    async with client(eco, "user:dpo") as admin:
        docs = await held(admin, eco, "docstore")
        assert [d["id"] for d in docs["documents"]] == [doc_id]
        assert {(v["document_id"], v["author"]) for v in docs["versions"]} == {
            (doc_id, ALICE), (theirs.json()["document_id"], ALICE)}
        prompts = await held(admin, eco, "promptstore")
        assert [p["name"] for p in prompts["prompts"]] == ["alice-prompt"]
        notes = await held(admin, eco, "notification")
        assert [s["owner"] for s in notes["subscriptions"]] == [ALICE]
        async with asyncio.timeout(GUARD):  # the audit trail has her writes by then
            while len((await held(admin, eco, "logcollector"))["audit"]) < 4:
                await asyncio.sleep(0.2)

        receipts = {}
        for key in STORES:
            answer = await admin.delete(
                f"{eco.url_for(key)}/privacy/held/{ALICE}",
                params={"owned_documents": "transfer", "transfer_to": BOB})
            assert answer.status_code == 200, answer.text
            receipts[key] = answer.json()["erased"]
        assert receipts["docstore"]["documents transferred"] == 1
        assert receipts["docstore"]["versions pseudonymised"] == 2
        assert receipts["docstore"]["metadata pseudonymised"] == 1
        assert receipts["promptstore"]["prompts transferred"] == 1
        assert receipts["notification"]["subscriptions deleted"] == 1
        assert receipts["logcollector"]["audit records pseudonymised"] >= 4
        assert receipts["logcollector"]["log records deleted"] == 1
        others = (await admin.get(f"{eco.url_for('logcollector')}/logs",
                                  params={"service": "web"})).json()["items"]
        assert [r["attributes"] for r in others] == [{"user": ALICE + "2"}]

        for key in STORES:  # nothing of hers is left to export
            assert all(rows == [] for rows in (await held(admin, eco, key)).values())
        kept = (await admin.get(f"{eco.url_for('docstore')}/documents/{doc_id}")).json()
        assert kept["author"] == BOB and kept["metadata"] == {"owner": pseudonym(eco, ALICE)}
        shown = await admin.get(f"{eco.url_for('promptstore')}/api/v1/prompts/alice-prompt")
        assert shown.status_code == 200, shown.text
