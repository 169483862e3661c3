"""The log-collector's live tail ends by itself (a fuzzer's connection to `/logs/stream`
stayed open for ever): after `LLMDOCS_LOGCOLLECTOR_STREAM_IDLE_SECONDS` without a new
record, and after `LLMDOCS_LOGCOLLECTOR_STREAM_MAX_SECONDS` in all. A reader goes on
with `Last-Event-ID`, as server-sent events readers do, and loses no record: the stream
tells where it starts even when it sends none. Real HTTP on loopback, small limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from llmdocs.services.logcollector.client import LogCollectorClient
from llmdocs.services.logcollector.schemas import LogIn

GUARD = 20.0  # a hang guard, not a performance bound
IDLE = 1.0
LIFETIME = 3.0


@pytest.fixture
async def collector(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch
                    ) -> AsyncIterator[LogCollectorClient]:
    monkeypatch.setenv("LLMDOCS_LOGCOLLECTOR_STREAM_POLL_SECONDS", "0.05")
    monkeypatch.setenv("LLMDOCS_LOGCOLLECTOR_STREAM_IDLE_SECONDS", str(IDLE))
    monkeypatch.setenv("LLMDOCS_LOGCOLLECTOR_STREAM_MAX_SECONDS", str(LIFETIME))
    # a quiet stream stays quiet: the collector's own logs are not shipped to it
    s = settings.model_copy(update={"logcollector_port": free_port(), "log_ship_level": "off"})
    await serve(create_app("logcollector", s), port=s.logcollector_port)
    token = issue_token(s, "user:reader", ["logs:read", "logs:audit", "logs:write"])
    async with LogCollectorClient.for_service(s, token=token) as client:
        client.http.headers["Authorization"] = f"Bearer {token}"  # for the raw streams
        yield client


async def read_stream(client: LogCollectorClient, last_event_id: str | None = None
                      ) -> tuple[list[str], float]:
    """Every line of one stream, until the server ends it, and how long it lasted."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    started = time.monotonic()
    async with asyncio.timeout(GUARD), client.http.stream(
            "GET", "/logs/stream", headers=headers) as answer:
        assert answer.status_code == 200
        lines = [line async for line in answer.aiter_lines()]
    return lines, time.monotonic() - started


def ids(lines: list[str]) -> list[int]:
    return [int(line.removeprefix("id: ")) for line in lines if line.startswith("id: ")]


async def test_a_quiet_stream_ends_after_its_idle_time(collector: LogCollectorClient) -> None:
    await collector.send_logs([LogIn(service="before", message="already there")])
    [before] = (await collector.logs()).items
    lines, lasted = await read_stream(collector)
    assert IDLE <= lasted < IDLE + 2, lasted
    # it said where it started and how long to wait before going on, and nothing else
    assert ids(lines) == [before.seq] and "retry: 50" in lines
    assert not [line for line in lines if line.startswith("data:")]


async def test_a_busy_stream_ends_at_its_lifetime(collector: LogCollectorClient) -> None:
    async def keep_writing() -> None:
        for i in range(100):
            await collector.send_logs([LogIn(service="busy", message=f"record {i}")])
            await asyncio.sleep(IDLE / 4)

    writer = asyncio.create_task(keep_writing())
    try:
        lines, lasted = await read_stream(collector)
    finally:
        writer.cancel()
    assert LIFETIME <= lasted < LIFETIME + 2, lasted  # records kept it open past IDLE
    assert len([line for line in lines if line == "event: log"]) >= 5


async def test_a_reader_goes_on_after_the_stream_ends_and_loses_nothing(
        collector: LogCollectorClient) -> None:
    lines, _ = await read_stream(collector)  # a quiet stream: no record, only its start
    [start] = ids(lines)
    await collector.send_logs([LogIn(service="later", message="between two streams")])
    again, _ = await read_stream(collector, str(start))
    assert any("between two streams" in line for line in again)

    # the client's tail goes on across the ends of its streams
    async def first_tailed() -> str:
        async for record in collector.tail(service="tailed"):
            return record.message
        return ""

    tailing = asyncio.create_task(first_tailed())
    await asyncio.sleep(IDLE * 2.5)  # its first stream has ended by now
    await collector.send_logs([LogIn(service="tailed", message="after a reconnect")])
    async with asyncio.timeout(GUARD):
        assert await tailing == "after a reconnect"


async def test_the_stream_says_how_it_ends(collector: LogCollectorClient) -> None:
    document = (await collector.http.get("/openapi.json")).json()
    description = document["paths"]["/logs/stream"]["get"]["description"]
    for said in ("LLMDOCS_LOGCOLLECTOR_STREAM_IDLE_SECONDS",
                 "LLMDOCS_LOGCOLLECTOR_STREAM_MAX_SECONDS", "Last-Event-ID"):
        assert said in description
