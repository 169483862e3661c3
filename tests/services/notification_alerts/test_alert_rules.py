"""Each built-in alert rule fires once per condition, however often (and in whatever
order) the events that show the condition arrive; a service unhealthy for less than the
configured time says nothing, and one that was alerted says when it has recovered."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import httpx

from llmdocs.core.config import Settings
from llmdocs.core.db import utcnow
from services.notification_alerts.conftest import (
    Start,
    deliveries,
    event,
    subscribe,
    until,
)

FAILED, STALE = "llmdocs.workflow.failed", "llmdocs.document.stale"
SPEC, BUDGET = "llmdocs.spec.changed", "llmdocs.budget.threshold"
DEAD, HEALTH = "llmdocs.event.dead_lettered", "llmdocs.service.health_changed"


def _health(service: str, to: str, ago: float) -> Any:
    return event(HEALTH, {"service": service, "from": "healthy" if to != "healthy"
                          else "unhealthy", "to": to, "reason": f"{service} said {to}"},
                 service, utcnow() - timedelta(seconds=ago))


def _budget(percent: int) -> Any:
    return event(BUDGET, {"scope": "user", "subject": "user:bob", "window": "total",
                          "percent": percent, "limit_usd": 1.0,
                          "spent_usd": None if percent == 100 else percent / 100,
                          "refused": percent == 100}, "user:user:bob")


async def _kinds(alice: httpx.AsyncClient) -> Counter[str]:
    return Counter(d["kind"] for d in await deliveries(alice))


async def _has(alice: httpx.AsyncClient, kind: str, count: int = 1) -> bool:
    return (await _kinds(alice))[kind] >= count


async def test_each_rule_fires_once_per_condition(start: Start, settings: Settings,
                                                  database_url: str) -> None:
    notify = await start(settings.model_copy(update={"database_url": database_url}),
                         UNHEALTHY_SECONDS=60)
    async with notify.client() as alice:
        await subscribe(alice, ["alert.*"], {"kind": "inbox"})
        failed = event(FAILED, {"workflow": "docgen", "run_id": "r1", "error": "boom"}, "r1")
        stale = {"document_id": "d1", "version": 2, "finding_id": "f1",
                 "source": "service:payments", "changes": [{"kind": "removed"}]}
        breaking = {"finding_id": "f3", "source": "service:payments", "base": "a",
                    "head": "b", "summary": {"breaking": 2, "non_breaking": 1},
                    "documents": ["d1"]}
        dead = {"group": "analysis", "stream": "llmdocs.events", "position": "7",
                "attempts": 3, "event_id": "e1", "event_type": "llmdocs.document.updated",
                "event_subject": "d9"}
        await notify.events(
            failed, failed,  # the same event redelivered
            event(FAILED, {"workflow": "docgen", "run_id": "r1", "error": "again"}, "r1"),
            event(FAILED, {"workflow": "docgen", "run_id": "r2", "error": "boom"}, "r2"),
            event(STALE, stale, "d1"), event(STALE, stale, "d1"),
            event(SPEC, {**breaking, "finding_id": "f2",
                         "summary": {"breaking": 0, "non_breaking": 4}}),
            event(SPEC, breaking), event(SPEC, breaking),
            _budget(80), _budget(80), _budget(100), _budget(100), _budget(50),
            event(DEAD, dead, "analysis"), event(DEAD, dead, "analysis"),
            # payments: unhealthy two minutes now (past the 60 s), said twice
            _health("payments", "unhealthy", 120), _health("payments", "unhealthy", 100),
            # billing: a blip of a second (a tick between the two sees a second, not 60)
            _health("billing", "unhealthy", 1), _health("billing", "healthy", 0))
        await until(lambda: _has(alice, "alert.service_unhealthy"))
        await notify.events(_health("payments", "healthy", 0),
                             _health("payments", "healthy", -1))
        await until(lambda: _has(alice, "alert.service_recovered"))
        # events are taken in order: once this one's alert is recorded, all are
        await notify.events(event(FAILED, {"workflow": "ingest", "run_id": "r3"}, "r3"))
        await until(lambda: _has(alice, "alert.run_failed", 3))

        assert await _kinds(alice) == {
            "alert.run_failed": 3, "alert.document_stale": 1, "alert.breaking_change": 1,
            "alert.budget": 2, "alert.dead_letter": 1, "alert.service_unhealthy": 1,
            "alert.service_recovered": 1}
        items = await until(lambda: _inbox(alice, 10))
        titles = {item["title"]: item for item in items}
        assert set(titles) == {
            "A run of docgen failed", "A run of ingest failed", "Document d1 is stale",
            "Breaking API change in service:payments", "LLM budget of user:bob past 80%",
            "LLM budget of user:bob exhausted",
            "Event llmdocs.document.updated dead-lettered by analysis",
            "payments unhealthy", "payments recovered"}
        down, up = titles["payments unhealthy"], titles["payments recovered"]
        assert (down["severity"], up["severity"]) == ("error", "info")
        assert down["text"].startswith("payments has been unhealthy for ")
        assert down["link"] == up["link"] == "http://localhost:3000/services/payments"
        assert titles["Document d1 is stale"]["link"] == "http://localhost:3000/documents/d1"
        assert titles["LLM budget of user:bob exhausted"]["severity"] == "critical"


async def _inbox(alice: httpx.AsyncClient, count: int) -> list[dict[str, Any]] | None:
    items: list[dict[str, Any]] = (await alice.get("/inbox", params={"limit": 100})).json()
    return items if len(items) >= count else None


async def test_a_rule_turned_off_says_nothing(start: Start) -> None:
    notify = await start(RUN_FAILED="false", UNHEALTHY_SECONDS=-1)
    async with notify.client() as alice:
        await subscribe(alice, ["alert.*", "llmdocs.workflow.failed"], {"kind": "inbox"})
        await notify.events(
            event(FAILED, {"workflow": "docgen", "run_id": "r1"}, "r1"),
            _health("payments", "unhealthy", 600), _budget(80))
        await until(lambda: _has(alice, "alert.budget"))
        await until(lambda: _has(alice, FAILED))
        assert await _kinds(alice) == {"alert.budget": 1, FAILED: 1}
