"""Distributed mode: `llmdocs serve notification` replicas on PostgreSQL and Redis
Streams share the work; a replica killed (SIGKILL) in the middle of a send loses
nothing: the other takes the delivery over once its lease runs out, with the same
webhook-id, and the receiver gets it once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from cluster import running_cluster
from llmdocs.core.auth import issue_token
from llmdocs.core.events import make_event
from llmdocs.core.events.redis import RedisEventBus
from services.notification.conftest import GUARD, subscribe, until
from services.notification.receiver import Receiver

ENV = {"LLMDOCS_NOTIFICATION_SEND_TIMEOUT_SECONDS": "3",
       "LLMDOCS_NOTIFICATION_LEASE_SECONDS": "4", "LLMDOCS_NOTIFICATION_POLL_SECONDS": "0.1",
       "LLMDOCS_NOTIFICATION_BACKOFF_SECONDS": "0.1"}


async def test_a_killed_replica_loses_nothing(pg_url: str, redis_url: str, tmp_path: Path,
                                              serve: Any) -> None:
    hook = Receiver(mode="hang")
    url = f"{(await serve(hook.app)).url}/hook"
    with running_cluster(tmp_path, pg_url, redis_url, services=("notification",),
                         replicas={"notification": 2}, env=ENV) as cluster:
        await asyncio.to_thread(cluster.kill, "notification#2")  # #1 takes the event
        first = f"http://127.0.0.1:{cluster.ports['notification#1']}"
        token = issue_token(cluster.settings, "user:alice",
                            ["notifications:read", "notifications:write"])
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=first, headers=headers, timeout=30) as alice:
            await subscribe(alice, url, hook.secret)
        bus = RedisEventBus(redis_url, cluster.settings)
        await bus.start()
        try:
            await bus.publish(make_event("docstore", "llmdocs.document.stored",
                                         {"document_id": "doc-1"}, "doc-1"))
        finally:
            await bus.close()
        async with asyncio.timeout(GUARD):
            await hook.arrived.wait()  # #1 is sending, and the receiver holds it
        await asyncio.to_thread(cluster.start, "notification#2")
        await asyncio.to_thread(cluster.wait_listening, "notification#2")
        await asyncio.to_thread(cluster.kill, "notification#1")
        hook.mode = "ok"
        hook.release.set()  # #1's request, if its connection still stood, is not answered
        second = f"http://127.0.0.1:{cluster.ports['notification#2']}"
        async with httpx.AsyncClient(base_url=second, headers=headers, timeout=30) as alice:
            delivered = await until(lambda: _delivered(alice))
    assert len(hook.accepted) == 1 and hook.accepted[0].verified
    assert {r.id for r in hook.requests} == {hook.accepted[0].id}
    assert delivered["history"][-1]["ok"] is True


async def _delivered(client: httpx.AsyncClient) -> dict[str, Any] | None:
    found = (await client.get("/deliveries", params={"status": "delivered"})).json()
    return found[0] if found else None
