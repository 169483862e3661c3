"""Webhooks as the Standard Webhooks specification has them, checked by its reference
implementation at a real local receiver: signed, the same `webhook-id` across retries,
delivered once when a receiver that was down comes back, dead-lettered after the last
attempt and replayed, a failing channel paused and resumed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from llmdocs.core.config import Settings
from services.notification.conftest import Service, deliveries, subscribe, until
from services.notification.receiver import Receiver

Hook = tuple[Receiver, str]


async def test_an_event_is_delivered_signed(database_url: str, settings: Settings,
                                            start: Callable[..., Awaitable[Service]],
                                            receiver: Hook) -> None:
    hook, url = receiver
    service = await start(settings.model_copy(update={"database_url": database_url}))
    async with service.client() as alice:
        made = await subscribe(alice, url, hook.secret)
        assert "secret" not in made["channel"] and made["status"] == "active"
        event_id = await service.publish(data={"document_id": "doc-1", "title": "Users"})
        await until(lambda: _ready(hook.accepted))
        got = hook.accepted[0]
        assert got.verified
        assert got.id.startswith("msg_") and got.headers["webhook-timestamp"].isdigit()
        assert got.headers["webhook-signature"].startswith("v1,")
        assert got.body["type"] == "llmdocs.document.stored"
        assert got.body["event"]["id"] == event_id
        assert got.body["data"] == {"document_id": "doc-1", "title": "Users"}
        delivered = await until(lambda: _status(alice, "delivered"))
        assert delivered[0]["subscription_id"] == made["id"]
        assert [(a["number"], a["ok"], a["status_code"]) for a in delivered[0]["history"]
                ] == [(1, True, 204)]


async def test_a_receiver_that_was_down_gets_it_once(
        service: Service, alice: httpx.AsyncClient, serve: Any) -> None:
    """Refused connections are retried; when the receiver is back it gets the event
    once, however many attempts failed before."""
    hook = Receiver()
    running = await serve(hook.app)
    url, port = f"{running.url}/hook", running.port
    await subscribe(alice, url, hook.secret)
    await running.stop()
    await service.publish()
    failed = await until(lambda: _attempts_at_least(alice, 3))
    assert all(not a["ok"] and a["status_code"] is None and "ConnectError" in a["error"]
               for a in failed["history"])
    await serve(hook.app, port=port)
    await until(lambda: _status(alice, "delivered"))
    assert len(hook.accepted) == 1 and len({r.id for r in hook.requests}) == 1


async def test_failed_answers_keep_the_webhook_id(
        service: Service, alice: httpx.AsyncClient, receiver: Hook) -> None:
    hook, url = receiver
    hook.mode = "fail"
    await subscribe(alice, url, hook.secret)
    await service.publish()
    failed = await until(lambda: _attempts_at_least(alice, 2))
    assert {a["status_code"] for a in failed["history"]} == {503}
    assert "down for maintenance" in failed["last_error"]
    hook.mode = "ok"
    await until(lambda: _status(alice, "delivered"))
    assert len({r.id for r in hook.requests}) == 1 and len(hook.accepted) == 1
    assert all(r.verified for r in hook.requests)


async def test_dead_letter_then_replay(start: Callable[..., Awaitable[Service]],
                                       fast: Callable[..., None], receiver: Hook) -> None:
    fast(max_attempts=3)
    hook, url = receiver
    hook.mode = "fail"
    service = await start()
    async with service.client() as alice:
        await subscribe(alice, url, hook.secret)
        await service.publish()
        dead = (await until(lambda: _status(alice, "dead")))[0]
        assert len(dead["history"]) == 3 and dead["attempts"] == 3
        hook.mode = "ok"
        replayed = await alice.post(f"/deliveries/{dead['id']}/replay")
        assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
        done = (await until(lambda: _status(alice, "delivered")))[0]
        assert [a["ok"] for a in done["history"]] == [False, False, False, True]
        assert len({r.id for r in hook.requests}) == 1
        again = await alice.post(f"/deliveries/{dead['id']}/replay")
        assert again.status_code == 200  # a delivered one may be sent again on purpose


async def test_a_failing_channel_is_paused_then_resumed(
        start: Callable[..., Awaitable[Service]], fast: Callable[..., None],
        receiver: Hook) -> None:
    fast(pause_after_failures=3)
    hook, url = receiver
    hook.mode = "fail"
    service = await start()
    async with service.client() as alice:
        made = await subscribe(alice, url, hook.secret)

        async def paused() -> dict[str, Any] | None:
            found: dict[str, Any] = (await alice.get(f"/subscriptions/{made['id']}")).json()
            return found if found["status"] == "paused" else None

        await service.publish()
        stopped = await until(paused)
        assert stopped["failures"] == 3
        assert "3 failed attempts in a row" in stopped["paused_reason"]
        assert "HTTP 503" in stopped["paused_reason"]
        assert len(hook.requests) == 3  # not retried while paused
        hook.mode = "ok"
        resumed = (await alice.post(f"/subscriptions/{made['id']}/resume")).json()
        assert resumed["status"] == "active" and resumed["paused_reason"] is None
        await until(lambda: _status(alice, "delivered"))
        assert (await alice.get(f"/subscriptions/{made['id']}")).json()["failures"] == 0


async def test_gone_pauses_at_once(service: Service, alice: httpx.AsyncClient,
                                   receiver: Hook) -> None:
    """410 Gone: the specification's "stop sending": dead, and the channel paused."""
    hook, url = receiver
    hook.mode = "gone"
    made = await subscribe(alice, url, hook.secret)
    await service.publish()
    await until(lambda: _status(alice, "dead"))
    found = (await alice.get(f"/subscriptions/{made['id']}")).json()
    assert found["status"] == "paused" and "410 Gone" in found["paused_reason"]
    assert len(hook.requests) == 1


async def _ready(items: list[Any]) -> bool:
    return bool(items)


async def _status(client: httpx.AsyncClient, status: str) -> list[dict[str, Any]]:
    return await deliveries(client, status=status)


async def _attempts_at_least(client: httpx.AsyncClient, n: int) -> dict[str, Any] | None:
    found = await deliveries(client)
    return found[0] if found and len(found[0]["history"]) >= n else None
