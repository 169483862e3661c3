"""An Idempotency-Key through a database crash: what could not be written while the
database was down is written once it is back, so that a retry neither meets a 409 for
ever (a claim left behind) nor runs a second time (a kept answer lost). On a
PostgreSQL of the test's own, which it crashes and starts again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest

from llmdocs.core.db import Database
from llmdocs.core.errors import Problem, outage_status
from llmdocs.core.idempotency import Answer, IdempotencyKeys
from llmdocs.devservers import PostgresServer
from llmdocs.services.interpreter.models import IdempotencyKey

DONE = Answer(200, {"document_id": "d1"}, {})


@pytest.fixture
async def keys_on_own_postgres() -> AsyncIterator[tuple[IdempotencyKeys, PostgresServer]]:
    server = PostgresServer().start()
    database = Database(server.create_database("keys"))
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(IdempotencyKey.metadata.create_all, tables=[
                IdempotencyKey.metadata.tables[IdempotencyKey.__tablename__]])
        yield IdempotencyKeys(database, IdempotencyKey, timedelta(hours=1)), server
    finally:
        await database.dispose()
        server.cleanup()


async def once_back(keys: IdempotencyKeys, carry_out: Callable[[], Awaitable[Answer]]
                    ) -> Answer:
    """The retry's answer, retried while it is a 409 or the database's outage."""
    for _ in range(600):  # a hang guard: 60 s
        try:
            return await keys.once("user:a", "k1", "{}", carry_out)
        except Problem as exc:
            assert exc.status == 409, exc.detail
        except Exception as exc:
            assert outage_status(exc) == 503, exc
        await asyncio.sleep(0.1)
    raise AssertionError("the key stayed claimed")


def crashing(server: PostgresServer, carried: list[str], *, fails: bool
             ) -> Callable[[], Awaitable[Answer]]:
    """The first request: the database crashes while it is carried out; it then fails
    (an outage of its own) or answers (its document stored before the crash)."""
    async def carry_out() -> Answer:
        carried.append("first")
        await asyncio.to_thread(server.crash)
        if fails:
            raise ConnectionRefusedError(111, "the orchestrator went away too")
        return DONE

    return carry_out


async def retried(keys: IdempotencyKeys, server: PostgresServer, carried: list[str]
                  ) -> None:
    """Start the database again and retry the request until it is answered."""
    async def carry_out() -> Answer:
        carried.append("retry")
        return DONE

    await asyncio.to_thread(server.start)
    assert await once_back(keys, carry_out) == DONE


async def test_a_request_the_crash_failed_leaves_no_claim_behind(
        keys_on_own_postgres: tuple[IdempotencyKeys, PostgresServer]) -> None:
    keys, server = keys_on_own_postgres
    carried: list[str] = []
    with pytest.raises(ConnectionRefusedError):
        await keys.once("user:a", "k1", "{}", crashing(server, carried, fails=True))
    await retried(keys, server, carried)
    assert carried == ["first", "retry"]


async def test_an_answer_the_crash_kept_from_the_database_is_kept_after_it(
        keys_on_own_postgres: tuple[IdempotencyKeys, PostgresServer]) -> None:
    keys, server = keys_on_own_postgres
    carried: list[str] = []
    answer = await keys.once("user:a", "k1", "{}", crashing(server, carried, fails=False))
    assert answer == DONE  # the caller gets it, not the outage's error
    await retried(keys, server, carried)
    assert carried == ["first"]  # replayed, not carried out again
