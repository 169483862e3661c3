"""Two replicas on one database share the work: every event of a burst is recorded
once and delivered once, whichever replica consumed it and whichever sent it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from llmdocs.core.config import Settings
from services.notification.conftest import Service, deliveries, subscribe, until
from services.notification.receiver import Receiver

EVENTS = 30


async def test_two_replicas_deliver_each_event_once(
        database_url: str, settings: Settings, start: Callable[..., Awaitable[Service]],
        receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    shared = settings.model_copy(update={"database_url": database_url})
    one, two = await start(shared), await start(shared)
    async with one.client() as alice:
        await subscribe(alice, url, hook.secret)
        sent = {await (one if n % 2 else two).publish(subject=f"doc-{n}")
                for n in range(EVENTS)}

        async def all_delivered() -> list[dict[str, Any]] | None:
            found = await deliveries(alice, status="delivered", limit=100)
            return found if len(found) == EVENTS else None

        done = await until(all_delivered)
    assert {r.body["event"]["id"] for r in hook.accepted} == sent
    assert len(hook.accepted) == EVENTS == len({r.id for r in hook.accepted})
    assert all(len(d["history"]) == 1 for d in done)
