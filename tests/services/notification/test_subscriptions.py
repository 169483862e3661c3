"""Subscriptions as their owners make and see them: bad channels refused with a 422
before anything is kept, secrets stored sealed and never shown, the Idempotency-Key,
other users' subscriptions out of sight, filters and patterns, capped bodies."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from ipaddress import ip_network

import httpx
import pytest
import sqlalchemy as sa

from llmdocs.core import crypto
from llmdocs.core.config import Settings
from services.notification.conftest import Service, deliveries, subscribe, until
from services.notification.receiver import Receiver, new_secret

Hook = tuple[Receiver, str]
SECRET = new_secret()


@pytest.mark.parametrize(("channel", "field"), [
    ({"kind": "webhook", "url": "ftp://example.com/hook", "secret": SECRET}, "url"),
    ({"kind": "webhook", "url": "file:///etc/passwd", "secret": SECRET}, "url"),
    ({"kind": "webhook", "url": "https://user:pw@example.com/hook", "secret": SECRET}, "url"),
    ({"kind": "webhook", "url": "http://example.com:99999/", "secret": SECRET}, "url"),
    ({"kind": "webhook", "url": "http://169.254.169.254/latest", "secret": SECRET}, "channel"),
    ({"kind": "webhook", "url": "http://[fe80::1]/hook", "secret": SECRET}, "channel"),
    ({"kind": "webhook", "url": "https://example.com/hook", "secret": "s3cret"}, "secret"),
    ({"kind": "webhook", "url": "https://example.com/hook", "secret": "whsec_!!"}, "secret"),
    ({"kind": "webhook", "url": "https://example.com/hook",
      "secret": "whsec_" + base64.b64encode(b"short").decode()}, "secret"),
    ({"kind": "webhook", "url": "https://example.com/hook"}, "secret"),
    ({"kind": "pigeon"}, "channel"),
    ({"kind": "inbox", "url": "https://example.com"}, "url"),
])
async def test_bad_channels_are_422(alice: httpx.AsyncClient, channel: dict[str, str],
                                    field: str) -> None:
    answer = await alice.post("/subscriptions", json={"events": ["llmdocs.document.*"],
                                                      "channel": channel})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in answer.text
    assert (await alice.get("/subscriptions")).json() == []


@pytest.mark.parametrize("events", [[], ["Not An Event"], ["llmdocs.document.stored"] * 51,
                                    ["x" * 201]])
async def test_bad_event_lists_are_422(alice: httpx.AsyncClient, events: list[str]) -> None:
    answer = await alice.post("/subscriptions", json={"events": events,
                                                      "channel": {"kind": "inbox"}})
    assert answer.status_code == 422, answer.text


async def test_a_name_that_resolves_into_a_blocked_network_is_422(
        settings: Settings, start: Callable[..., Awaitable[Service]]) -> None:
    blocked = settings.model_copy(update={"blocked_networks": [ip_network("127.0.0.0/8")]})
    service = await start(blocked)
    async with service.client() as alice:
        answer = await alice.post("/subscriptions", json={
            "events": ["llmdocs.document.stored"],
            "channel": {"kind": "webhook", "url": "http://localhost:8/hook",
                        "secret": SECRET}})
    assert answer.status_code == 422, answer.text
    assert "blocked network" in answer.json()["detail"]


async def test_the_secret_is_sealed_and_never_shown(service: Service,
                                                   alice: httpx.AsyncClient) -> None:
    made = await subscribe(alice, "https://example.com/hook", SECRET)
    assert made["channel"] == {"kind": "webhook", "url": "https://example.com/hook"}
    listed = (await alice.get("/subscriptions")).json()
    assert SECRET not in str(listed) and SECRET.removeprefix("whsec_") not in str(listed)
    async with service.app.state.resources.database.transaction() as session:
        sealed, channel = (await session.execute(sa.text(
            "SELECT sealed, channel FROM notification_subscriptions"))).one()
    assert sealed.startswith(crypto.TEXT_PREFIX) and SECRET.removeprefix("whsec_") not in sealed
    ring = service.settings.secrets_ring  # the key ring, bound to the row's id
    assert json.loads(ring.open_text(sealed, made["id"])) == {"secret": SECRET}
    with pytest.raises(crypto.CryptoError):
        ring.open_text(sealed, "another-row")
    assert SECRET.removeprefix("whsec_") not in str(channel)


async def test_an_idempotency_key_makes_one_subscription(alice: httpx.AsyncClient) -> None:
    body = {"events": ["llmdocs.run.*"], "channel": {"kind": "inbox"}}
    headers = {"Idempotency-Key": "k-1"}
    first = await alice.post("/subscriptions", json=body, headers=headers)
    again = await alice.post("/subscriptions", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = await alice.post("/subscriptions", json={**body, "events": ["x.y"]},
                             headers=headers)
    assert other.status_code == 422
    assert len((await alice.get("/subscriptions")).json()) == 1


async def test_others_subscriptions_are_out_of_sight(service: Service,
                                                    alice: httpx.AsyncClient) -> None:
    made = await subscribe(alice, "https://example.com/hook", SECRET)
    async with service.client("user:bob") as bob:
        assert (await bob.get("/subscriptions")).json() == []
        assert (await bob.get(f"/subscriptions/{made['id']}")).status_code == 404
        assert (await bob.delete(f"/subscriptions/{made['id']}")).status_code == 404
        assert (await bob.get("/subscriptions", params={"all": "true"})).json() == []
    async with service.client("user:root", "notifications:read", "notifications:admin") as admin:
        everyone = (await admin.get("/subscriptions", params={"all": "true"})).json()
        assert [s["id"] for s in everyone] == [made["id"]]
    assert (await alice.delete(f"/subscriptions/{made['id']}")).status_code == 204
    assert (await alice.get(f"/subscriptions/{made['id']}")).status_code == 404


async def test_patterns_and_filters_choose_what_is_sent(
        service: Service, alice: httpx.AsyncClient, receiver: Hook) -> None:
    hook, url = receiver
    await subscribe(alice, url, hook.secret, events=("llmdocs.document.*",),
                    filters={"document": "doc-2"})
    await subscribe(alice, url, hook.secret, events=("llmdocs.workflow.*",),
                    filters={"tag": "payments"})
    await service.publish("llmdocs.document.stored", subject="doc-1")
    await service.publish("llmdocs.workflow.failed", {"tags": ["billing"]}, subject="r-1")
    await service.publish("llmdocs.workflow.failed", {"tags": ["payments"]}, subject="r-2")
    await service.publish("llmdocs.document.stale", subject="doc-2")
    sent = await until(lambda: _delivered(alice, 2))
    assert sorted(d["kind"] for d in sent) == ["llmdocs.document.stale",
                                               "llmdocs.workflow.failed"]
    assert sorted(r.body["event"]["subject"] for r in hook.accepted) == ["doc-2", "r-2"]


async def test_a_large_event_is_sent_capped(start: Callable[..., Awaitable[Service]],
                                            fast: Callable[..., None],
                                            receiver: Hook) -> None:
    fast(max_body_bytes=4096)
    hook, url = receiver
    service = await start()
    async with service.client() as alice:
        await subscribe(alice, url, hook.secret)
        await service.publish(data={"document_id": "doc-1", "content": "x" * 100_000})
        await until(lambda: _delivered(alice, 1))
    body = hook.accepted[0].body
    assert hook.accepted[0].verified
    assert body["data"]["truncated"] is True and body["data"]["bytes"] > 100_000
    assert body["event"]["data"] == body["data"] and body["type"] == "llmdocs.document.stored"


async def _delivered(client: httpx.AsyncClient, n: int) -> list[dict[str, object]] | None:
    found = await deliveries(client, status="delivered")
    return found if len(found) >= n else None
