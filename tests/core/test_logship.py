"""Log shipping on a real SQL bus: records go out in batches with their service,
correlation id, trace id and attributes; a full queue drops and counts; sampling keeps
whole requests; the bus's own logs are never shipped."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import structlog

from llmdocs.core import logship
from llmdocs.core.config import Settings
from llmdocs.core.db import Database
from llmdocs.core.events import Event, EventBus
from llmdocs.core.events.factory import create_event_bus
from llmdocs.core.logging import configure_logging
from llmdocs.core.logship import LOGS_SHIPPED, LogShipper
from llmdocs.core.middleware import correlation_id_var
from llmdocs.migrations import upgrade

STREAM = "llmdocs.events.logs"


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[EventBus]:
    configure_logging(settings.log_level, settings.log_format)
    database = Database.from_settings(settings)
    await database.migrate(upgrade)
    events = create_event_bus(settings, database)
    await events.start()
    yield events
    await events.close()
    await database.dispose()


async def shipped(bus: EventBus) -> list[Event]:
    batches = [e for _, e in await bus.replay(limit=1000, stream=STREAM)]
    assert {e.type for e in batches} <= {LOGS_SHIPPED}
    assert await bus.replay() == []  # the other consumers' stream stays clear of logs
    return batches


def dropped_total() -> float:
    [metric] = logship.DROPPED.collect()
    return next(s.value for s in metric.samples if s.name == "llmdocs_logs_dropped_total")


@pytest.fixture
async def shipper(bus: EventBus) -> AsyncIterator[LogShipper]:
    handler = LogShipper(bus, STREAM, "demo", level="debug", sample=1.0)
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
    await handler.stop()


async def test_records_ship_with_their_context(bus: EventBus, shipper: LogShipper) -> None:
    token = correlation_id_var.set("req-7")
    try:
        with structlog.contextvars.bound_contextvars(correlation_id="req-7",
                                                     service="doc-store"):
            structlog.get_logger("demo").info("stored", document_id="d1", size=3)
            logging.getLogger("plain").warning("disk at %d%%", 91)
            try:
                raise ValueError("broken")
            except ValueError:
                structlog.get_logger("demo").exception("failed")
    finally:
        correlation_id_var.reset(token)
    logging.getLogger("llmdocs.events").warning("event backend unreachable")  # not shipped
    await shipper.stop()
    [batch] = await shipped(bus)
    records = batch.data["records"]
    assert [(r["level"], r["logger"], r["message"]) for r in records] == [
        ("info", "demo", "stored"), ("warning", "plain", "disk at 91%"),
        ("error", "demo", "failed")]
    assert {r["service"] for r in records} == {"doc-store"}
    assert {r["correlation_id"] for r in records} == {"req-7"}
    assert records[0]["attributes"] == {"document_id": "d1", "size": 3}
    assert "ValueError: broken" in records[2]["attributes"]["exception"]
    assert batch.data["dropped"] == 0


async def test_a_full_queue_drops_and_counts(bus: EventBus, shipper: LogShipper,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logship, "QUEUE_RECORDS", 5)
    dropped_before = dropped_total()
    for n in range(8):
        logging.getLogger("demo").info("record %d", n)
    assert shipper.dropped == 3
    assert dropped_total() - dropped_before == 3  # in /metrics
    await shipper.stop()
    [batch] = await shipped(bus)
    assert [r["message"] for r in batch.data["records"]] == [f"record {n}" for n in range(5)]
    assert batch.data["dropped"] == 3


async def test_sampling_keeps_whole_requests_and_every_warning(bus: EventBus) -> None:
    handler = LogShipper(bus, STREAM, "demo", level="info", sample=0.5)
    logging.getLogger().addHandler(handler)
    try:
        for n in range(40):
            with structlog.contextvars.bound_contextvars(correlation_id=f"req-{n}"):
                for line in ("start", "end"):
                    logging.getLogger("demo").info(line)
                logging.getLogger("demo").warning("slow")
        logging.getLogger("demo").debug("below the level")
    finally:
        logging.getLogger().removeHandler(handler)
        await handler.stop()
    records = [r for e in await shipped(bus) for r in e.data["records"]]
    by_request: dict[str, list[str]] = {}
    for r in records:
        by_request.setdefault(r["correlation_id"], []).append(r["message"])
    assert len(by_request) == 40  # every request's warning
    kept = [lines for lines in by_request.values() if lines != ["slow"]]
    assert all(lines == ["start", "end", "slow"] for lines in kept)  # whole or none
    assert 0 < len(kept) < 40
    assert "below the level" not in {r["message"] for r in records}


def test_shipped_records_name_no_privacy_subject_and_no_query() -> None:
    assert logship.redacted('HTTP Request: DELETE http://h:1/privacy/held/oidc:12/x?'
                            'pseudonym=p "HTTP/1.1 200 OK"') == (
        'HTTP Request: DELETE http://h:1/privacy/held/{subject} "HTTP/1.1 200 OK"')
    assert logship.redacted("path /privacy/subjects/alice") == "path /privacy/subjects/{subject}"
    assert logship.redacted("GET https://d/search?q=secret words") == (
        "GET https://d/search?{query} words")
    assert logship.redacted("is it? yes: /documents/1") == "is it? yes: /documents/1"
