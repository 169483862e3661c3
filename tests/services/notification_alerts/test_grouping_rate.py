"""Grouping: a flapping service's alerts go out once, then as one summary when the
window closes ("payments unhealthy, 5 times in 10 seconds"). Rate limit: a channel past
its limit keeps the excess waiting for the next window, visibly, never dropping it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from llmdocs.core.config import Settings
from llmdocs.core.db import utcnow
from llmdocs.services.notification.models import Subscription
from llmdocs.services.notification.throttle import Throttle
from services.notification_alerts.conftest import (
    SlackHook,
    Start,
    deliveries,
    event,
    subscribe,
    until,
)

HEALTH = "llmdocs.service.health_changed"
WINDOW = 10  # seconds of grouping; the test waits for it to close


def _flap(service: str, times: int) -> list[Any]:
    """`times` spells unhealthy, each over a moment later, a second apart."""
    now = utcnow()
    return [event(HEALTH, {"service": service, "from": a, "to": b, "reason": None}, service,
                  now + timedelta(seconds=i, milliseconds=500 * j))
            for i in range(times)
            for j, (a, b) in enumerate((("healthy", "unhealthy"), ("unhealthy", "healthy")))]


async def _inbox(alice: httpx.AsyncClient, count: int) -> list[dict[str, Any]] | None:
    items: list[dict[str, Any]] = (await alice.get("/inbox")).json()
    return items if len(items) >= count else None


async def test_repeats_of_an_alert_go_out_once_then_as_one_summary(
        start: Start, settings: Settings, database_url: str) -> None:
    notify = await start(settings.model_copy(update={"database_url": database_url}),
                         UNHEALTHY_SECONDS=0, GROUP_WINDOW_SECONDS=WINDOW)
    async with notify.client() as alice:
        await subscribe(alice, ["alert.service_unhealthy"], {"kind": "inbox"})
        await notify.events(*_flap("payments", 5), *_flap("billing", 1))
        first = await until(lambda: _inbox(alice, 2))
        assert sorted(item["title"] for item in first) == ["billing unhealthy",
                                                           "payments unhealthy"]
        found = await deliveries(alice)
        assert Counter(d["status"] for d in found) == {"delivered": 2, "grouped": 4,
                                                       "pending": 1}
        [summary] = [d for d in found if d["status"] == "pending"]
        assert summary["repeats"] == 5 and summary["attempts"] == 0

        items = await until(lambda: _inbox(alice, 3), guard=WINDOW * 6)
    assert items[0]["title"] == "payments unhealthy, 5 times in 10 seconds"
    assert items[0]["text"].startswith("payments unhealthy: 5 times in 10 seconds (the first")
    assert items[0]["link"] == "http://localhost:3000/services/payments"


async def _rate_limited(alice: httpx.AsyncClient) -> list[dict[str, Any]] | None:
    waiting = [d for d in await deliveries(alice, status="pending")
               if (d["last_error"] or "").startswith("rate limited")]
    return waiting if len(waiting) == 3 else None


async def test_a_channel_past_its_rate_keeps_the_excess_waiting(
        start: Start, slack: tuple[SlackHook, str]) -> None:
    hook, url = slack
    notify = await start(RATE_LIMIT=2, RATE_WINDOW_SECONDS=3600)
    async with notify.client() as alice:
        await subscribe(alice, ["llmdocs.document.stored"], {"kind": "slack", "url": url})
        await notify.events(*(event("llmdocs.document.stored", {"document_id": f"d{i}"},
                                     f"d{i}") for i in range(5)))
        waiting = await until(lambda: _rate_limited(alice))
        delivered = await deliveries(alice, status="delivered")
    assert len(delivered) == 2 and len(hook.messages) == 2
    hour = int(utcnow().timestamp()) // 3600 * 3600 + 3600
    for delivery in waiting:  # not an attempt: it has none, and waits for the next hour
        assert delivery["attempts"] == 0 and delivery["history"] == []
        assert delivery["next_attempt_at"] == datetime.fromtimestamp(hour, UTC).isoformat(
            ).replace("+00:00", "Z")
        assert delivery["last_error"].startswith("rate limited: 2 per 3600 s")


async def test_the_rate_opens_again_in_the_next_window(start: Start, settings: Settings,
                                                      database_url: str) -> None:
    notify = await start(settings.model_copy(update={"database_url": database_url}))
    database = notify.app.state.resources.database
    async with notify.client() as alice:
        await subscribe(alice, ["alert.*"], {"kind": "slack",
                                            "url": "http://127.0.0.1:9/services/T/B/x"})
        await subscribe(alice, ["alert.*"], {"kind": "inbox"})
    async with database.session() as session:
        slack, inbox = sorted((await session.scalars(sa.select(Subscription))).all(),
                              key=lambda s: s.kind, reverse=True)
    throttle = Throttle(database, 2, 60)
    at = datetime(2026, 12, 7, 8, 0, 30, tzinfo=UTC)
    opens = datetime(2026, 12, 7, 8, 1, tzinfo=UTC)
    assert [await throttle.admit(slack, at) for _ in range(3)] == [None, None, opens]
    assert await throttle.admit(slack, opens) is None
    assert all([await throttle.admit(inbox, at) is None for _ in range(5)])  # ours: no limit
    # two replicas, each taking its sends in shares of a tenth: never over the limit
    one, two = Throttle(database, 25, 60), Throttle(database, 25, 60)
    later = opens + timedelta(minutes=5)
    admitted = [await (one, two)[i % 2].admit(slack, later) is None for i in range(40)]
    assert admitted.count(True) == 25 and not any(admitted[25:])

