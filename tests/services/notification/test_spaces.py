"""Notifications keep to spaces, with the real doc-store keeping the memberships over
HTTP: a document stored in team-b reaches its member Bob (inbox and webhook) and never
Alice, a member of team-a only; once Bob's membership is revoked, team-b's documents no
longer reach him; a subscription may filter only on a space its owner is a member of."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from services.notification.conftest import Service, until
from services.notification.receiver import Receiver
from test_spaces_services import SECRET, clean, every_route_by_id

STORED = "llmdocs.document.stored"


def _docs(settings: Settings, subject: str, *scopes: str) -> httpx.AsyncClient:
    token = issue_token(settings, subject, scopes or ("docs:read", "docs:write"))
    return httpx.AsyncClient(base_url=settings.url_for("docstore"), timeout=30,
                             headers={"Authorization": f"Bearer {token}"})


async def _store(settings: Settings, subject: str, space: str) -> str:
    async with _docs(settings, subject) as docs:
        stored = await docs.post("/documents", json={
            "content": f"text of {subject} in {space}", "title": "t", "format": "markdown",
            "space": space})
        assert stored.status_code == 201, stored.text
        document_id: str = stored.json()["document_id"]
        return document_id


async def _inbox_documents(client: httpx.AsyncClient) -> list[str | None]:
    """The documents the caller's inbox items are about (None: no document)."""
    answer = await client.get("/inbox")
    assert answer.status_code == 200, answer.text
    return [item["text"].rpartition(" about ")[2] or None for item in answer.json()]


@pytest.fixture
async def eco(settings: Settings, serve: Any) -> Settings:
    """A doc-store over HTTP keeping spaces team-a (Alice) and team-b (Bob), looked up
    afresh on every question (no membership cache)."""
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES}
                              | {"inprocess_calls": False, "spaces_cache_seconds": 0.0})
    await serve(create_app("docstore", eco), port=eco.port_for("docstore"))
    async with _docs(eco, "user:admin", "*") as admin:
        for space, member in (("team-a", "user:alice"), ("team-b", "user:bob")):
            assert (await admin.post("/spaces", json={"name": space})).status_code == 201
            granted = await admin.put(f"/spaces/{space}/members/{member}",
                                      json={"role": "editor"})
            assert granted.status_code == 200, granted.text
    return eco


async def _revoke_bob(eco: Settings) -> None:
    async with _docs(eco, "user:admin", "*") as admin:
        revoked = await admin.delete("/spaces/team-b/members/user:bob")
        assert revoked.status_code == 204, revoked.text


async def test_a_spaces_events_reach_only_its_members(
        eco: Settings, start: Callable[..., Awaitable[Service]],
        receiver: tuple[Receiver, str]) -> None:
    service = await start(eco)
    hook, url = receiver
    async with service.client("user:alice") as alice, service.client("user:bob") as bob:
        # a space filter names one of the owner's spaces, or is refused
        refused = await alice.post("/subscriptions", json={
            "events": [STORED], "filters": {"space": "team-b"}, "channel": {"kind": "inbox"}})
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "team-b" in refused.text
        for client in (alice, bob):
            made = await client.post("/subscriptions", json={
                "events": [STORED], "channel": {"kind": "inbox"}})
            assert made.status_code == 201, made.text
        hooked = await alice.post("/subscriptions", json={
            "events": [STORED], "filters": {"space": "team-a"},
            "channel": {"kind": "webhook", "url": url, "secret": hook.secret}})
        assert hooked.status_code == 201, hooked.text
        alices_hook = await alice.post("/subscriptions", json={
            "events": [STORED], "channel": {"kind": "webhook", "url": url,
                                            "secret": hook.secret}})
        assert alices_hook.status_code == 201, alices_hook.text

        secret_doc = await _store(eco, "user:bob", "team-b")
        own_doc = await _store(eco, "user:alice", "team-a")  # after Bob's: a barrier
        assert await until(lambda: _has(bob, secret_doc))
        assert await until(lambda: _has(alice, own_doc))
        assert await _inbox_documents(alice) == [own_doc]
        assert await until(lambda: _count(hook, 2))
        assert all(secret_doc not in str(got.body) for got in hook.requests)
        # each sees their own deliveries only
        for client, other in ((alice, bob), (bob, alice)):
            mine = (await client.get("/deliveries")).json()
            theirs = {s["id"] for s in (await other.get("/subscriptions")).json()}
            assert mine and not {d["subscription_id"] for d in mine} & theirs

        await _revoke_bob(eco)
        later = await _store(eco, "user:admin", "team-b")
        barrier = await service.publish(STORED, {"document_id": "no-space"}, "no-space")
        assert barrier
        assert await until(lambda: _has(bob, "no-space"))
        assert later not in await _inbox_documents(bob)
        assert later not in await _inbox_documents(alice)


async def _count(hook: Receiver, at_least: int) -> bool:
    return len(hook.accepted) >= at_least


async def _has(client: httpx.AsyncClient, document_id: str) -> bool:
    return document_id in await _inbox_documents(client)


async def test_another_users_subscriptions_and_deliveries_are_missing(
        service: Service, alice: httpx.AsyncClient, receiver: tuple[Receiver, str]) -> None:
    """Every route naming a subscription or a delivery, called by another user: the 404
    a missing one gets, and nothing of the owner's channel or events in the answer."""
    hook, url = receiver
    secret_url = f"{url}?team={SECRET}"
    made = await alice.post("/subscriptions", json={
        "events": [STORED], "channel": {"kind": "webhook", "url": secret_url,
                                        "secret": hook.secret}})
    assert made.status_code == 201, made.text
    await service.publish()
    delivered = await until(lambda: _delivered(alice))
    async with service.client("user:bob") as bob:
        checked = await every_route_by_id(bob, {"subscription_id": made.json()["id"],
                                                "delivery_id": delivered["id"]}, SECRET)
        assert checked >= 5
        assert clean(await bob.get("/deliveries"), SECRET).json() == []
        assert (await bob.get("/inbox")).json() == []
    still = await alice.get(f"/subscriptions/{made.json()['id']}")
    assert still.status_code == 200 and SECRET in still.text  # Bob's DELETE took nothing


async def _delivered(client: httpx.AsyncClient) -> dict[str, Any] | None:
    found = (await client.get("/deliveries", params={"status": "delivered"})).json()
    return found[0] if found else None


async def test_a_delivery_recorded_before_a_revoke_is_not_sent(
        eco: Settings, start: Callable[..., Awaitable[Service]], fast: Callable[..., None],
        receiver: tuple[Receiver, str]) -> None:
    """Recorded by a replica that only consumes, while Bob was a member; sent by another
    after the revoke: dead at once, nothing reaches his webhook."""
    hook, url = receiver
    fast(send=False)
    consumer = await start(eco)
    async with consumer.client("user:bob") as bob:
        made = await bob.post("/subscriptions", json={
            "events": [STORED], "channel": {"kind": "webhook", "url": url,
                                            "secret": hook.secret}})
        assert made.status_code == 201, made.text
        await _store(eco, "user:bob", "team-b")
        assert await until(lambda: _pending(bob))
        await _revoke_bob(eco)
        fast(send=True, consume_events=False)
        await start(eco)
        dead = await until(lambda: _dead(bob))
    assert "no longer a member of the space 'team-b'" in dead["last_error"]
    assert hook.requests == []


async def _pending(client: httpx.AsyncClient) -> bool:
    return bool((await client.get("/deliveries", params={"status": "pending"})).json())


async def _dead(client: httpx.AsyncClient) -> dict[str, Any] | None:
    found = (await client.get("/deliveries", params={"status": "dead"})).json()
    return found[0] if found else None
