"""Bad input to the log-collector's writes on PostgreSQL: a NUL in a record's text was a
500 from the database, and a time whose UTC is past year 9999 a 500 from the
conversion; both are a 422 naming the field, and nothing of the request is stored (a
batch is refused whole)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from badinput import TEXT, assert_refused, on_postgres, send
from llmdocs.core.config import Settings

RECORD: dict[str, Any] = {"id": "l1", "service": "svc", "logger": "lg", "message": "hello",
                          "correlation_id": "c1", "trace_id": "t1"}
TEXT_FIELDS = ["id", "service", "logger", "message", "correlation_id", "trace_id"]


@pytest.fixture
async def collector(serve: Any, settings: Settings, pg_url: str
                    ) -> AsyncIterator[httpx.AsyncClient]:
    async with on_postgres(serve, settings, pg_url, "logcollector", ("/logs", RECORD)) as http:
        yield http


async def stored(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await http.get("/logs")
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


@pytest.mark.parametrize("kind", sorted(TEXT))
async def test_record_text_a_column_cannot_hold_is_a_422(
        collector: httpx.AsyncClient, kind: str) -> None:
    before = await stored(collector)
    for field in TEXT_FIELDS:
        bad = {**RECORD, "id": "l2", field: TEXT[kind]}
        assert_refused(await send(collector, "POST", "/logs", bad), field)
        batch = {"records": [{**RECORD, "id": "l3"}, bad]}
        assert_refused(await send(collector, "POST", "/logs/batch", batch),
                       f"records.1.{field}")
    assert await stored(collector) == before


@pytest.mark.parametrize("time", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+01:00"])
async def test_a_time_outside_what_utc_holds_is_a_422(
        collector: httpx.AsyncClient, time: str) -> None:
    before = await stored(collector)
    answer = await send(collector, "POST", "/logs", {**RECORD, "id": "l4", "time": time})
    assert_refused(answer, "time")
    answer = await collector.get("/logs", params={"since": time})
    assert_refused(answer, "since")
    assert await stored(collector) == before


async def test_a_filter_a_column_cannot_hold_is_a_422(collector: httpx.AsyncClient) -> None:
    for path, name in [("/logs", "service"), ("/logs", "correlation_id"), ("/logs", "q"),
                       ("/events", "type"), ("/events", "service")]:
        assert_refused(await collector.get(path, params={name: "a\x00b"}), name)
    assert_refused(await collector.get("/correlations/a%00b"), "correlation_id")


@pytest.mark.parametrize(("params", "headers", "field"), [
    ({"service": "a\x00b"}, {}, "service"),
    ({"correlation_id": "a\x00b"}, {}, "correlation_id"),
    ({"level": "loud"}, {}, "level"),
    # an id the stream never gave: not a number, digits int() cannot read, past BIGINT
    ({}, {"Last-Event-ID": b"\xb2"}, "last-event-id"),  # "²" in the header's latin-1
    ({}, {"Last-Event-ID": "9" * 5000}, "last-event-id"),
    ({}, {"Last-Event-ID": str(2**63)}, "last-event-id"),
    ({}, {"Last-Event-ID": "-1"}, "last-event-id"),
])
async def test_a_live_tail_with_a_bad_filter_or_resume_id_is_a_422(
        collector: httpx.AsyncClient, params: dict[str, str], headers: dict[str, Any],
        field: str) -> None:
    """Refused before the stream opens, not as a stream that breaks on its first read."""
    async with collector.stream("GET", "/logs/stream", params=params,
                                headers=headers) as answer:
        await answer.aread()
    assert_refused(answer, field)
