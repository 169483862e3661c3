"""The in-app inbox: a subscription of kind inbox puts each notification in its owner's
inbox once, listed newest first, marked read, and pushed over server-sent events: the
unread ones, then new ones (a reconnecting browser's Last-Event-ID skips those it has)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from services.notification.conftest import GUARD, Service, until


async def sse(client: httpx.AsyncClient, queue: asyncio.Queue[dict[str, Any]],
              headers: dict[str, str] | None = None) -> None:
    """Each `inbox` event of the stream, parsed, onto the queue (with its id)."""
    async with client.stream("GET", "/inbox/stream", headers=headers or {}) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        async for line in answer.aiter_lines():
            if line.startswith("id:"):
                event["id"] = line[3:].strip()
            elif line.startswith("data:"):
                event["data"] = json.loads(line[5:].strip())
            elif not line and "data" in event:
                await queue.put(event)
                event = {}


async def test_inbox_items_are_listed_read_and_streamed(service: Service,
                                                       alice: httpx.AsyncClient) -> None:
    made = await alice.post("/subscriptions", json={"events": ["llmdocs.workflow.*"],
                                                    "channel": {"kind": "inbox"}})
    assert made.status_code == 201 and made.json()["channel"] == {"kind": "inbox"}
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    stream = asyncio.create_task(sse(alice, queue))
    await service.publish("llmdocs.workflow.failed", {"service": "orchestrator"}, "run-1")
    async with asyncio.timeout(GUARD):
        pushed = await queue.get()
    assert pushed["data"]["kind"] == "llmdocs.workflow.failed"
    assert pushed["id"] == pushed["data"]["id"] and pushed["data"]["read_at"] is None

    await service.publish("llmdocs.workflow.finished", {}, "run-2")
    async with asyncio.timeout(GUARD):
        second = await queue.get()
    stream.cancel()
    listed = (await alice.get("/inbox")).json()
    assert [i["id"] for i in listed] == [second["id"], pushed["id"]]  # newest first

    # a browser reconnecting with the first id gets the second again, not the first
    again: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    resumed = asyncio.create_task(sse(alice, again, {"Last-Event-ID": pushed["id"]}))
    async with asyncio.timeout(GUARD):
        assert (await again.get())["id"] == second["id"]
    resumed.cancel()

    marked = (await alice.post("/inbox/read", json={"ids": [pushed["id"]]})).json()
    assert marked == {"marked": 1, "unread": 1}
    assert [i["id"] for i in (await alice.get("/inbox", params={"unread": "true"})).json()
            ] == [second["id"]]
    assert (await alice.post("/inbox/read", json={})).json() == {"marked": 1, "unread": 0}

    async with service.client("user:bob") as bob:
        assert (await bob.get("/inbox")).json() == []
        assert (await bob.post("/inbox/read", json={})).json() == {"marked": 0, "unread": 0}


async def test_an_inbox_item_is_made_once(service: Service, alice: httpx.AsyncClient) -> None:
    """A redelivered event, and a replayed delivery, leave one item."""
    await alice.post("/subscriptions", json={"events": ["llmdocs.document.stored"],
                                             "channel": {"kind": "inbox"}})
    event_id = await service.publish()
    delivered = await until(lambda: _one_delivered(alice))
    bus = service.app.state.resources.events
    events = [event for _, event in await bus.replay() if event.id == event_id]
    await bus.publish(events[0])  # the same event again, as a redelivery would bring it
    replay = await alice.post(f"/deliveries/{delivered['id']}/replay")
    assert replay.status_code == 200
    await until(lambda: _one_delivered(alice, attempts=2))
    assert len((await alice.get("/inbox")).json()) == 1
    assert len((await alice.get("/deliveries")).json()) == 1


async def _one_delivered(client: httpx.AsyncClient, attempts: int = 1
                         ) -> dict[str, Any] | None:
    found = (await client.get("/deliveries", params={"status": "delivered"})).json()
    return found[0] if found and len(found[0]["history"]) >= attempts else None
