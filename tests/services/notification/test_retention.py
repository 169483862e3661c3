"""Retention: delivered deliveries (with their attempts) and read inbox items older than
`LLMDOCS_NOTIFICATION_RETENTION_DAYS` are forgotten; dead deliveries, waiting for a
replay, and unread items stay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa

from llmdocs.devservers import free_port
from services.notification.conftest import Service, deliveries, subscribe, until
from services.notification.receiver import Receiver


async def test_old_delivered_and_read_things_are_forgotten(
        start: Callable[..., Awaitable[Service]], fast: Callable[..., None],
        receiver: tuple[Receiver, str]) -> None:
    fast(retention_days=1 / 86400, retention_interval_seconds=0.1, tick_seconds=0.1,
         max_attempts=1)
    hook, url = receiver
    service = await start()
    async with service.client() as alice:
        await subscribe(alice, url, hook.secret)
        await subscribe(alice, f"http://127.0.0.1:{free_port()}/refused", hook.secret)
        await alice.post("/subscriptions", json={"events": ["llmdocs.document.stored"],
                                                 "channel": {"kind": "inbox"}})
        await service.publish(subject="doc-1")
        await service.publish(subject="doc-2")
        first, second = reversed(await until(lambda: _inbox(alice, 2)))  # all recorded
        assert (await alice.post("/inbox/read", json={"ids": [first["id"]]})).status_code == 200

        async def only_dead() -> list[dict[str, Any]] | None:
            found = await deliveries(alice)
            return found if found and {d["status"] for d in found} == {"dead"} else None

        kept = await until(only_dead)
        assert len(kept) == 2
        assert [i["id"] for i in await until(lambda: _inbox(alice, 1))] == [second["id"]]
    async with service.app.state.resources.database.transaction() as session:
        attempts = await session.scalar(sa.text("SELECT count(*) FROM notification_attempts"))
    assert attempts == 2  # the dead ones'


async def _inbox(client: Any, n: int) -> list[dict[str, Any]] | None:
    found: list[dict[str, Any]] = (await client.get("/inbox")).json()
    return found if len(found) == n else None
