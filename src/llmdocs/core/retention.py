"""Retention per data class: each service deletes its own old rows in the background,
in bounded batches, so that no one statement holds the database for long and replicas
doing the same work at once only find fewer rows to delete (README "Compliance")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import ColumnElement, CursorResult, delete, select
from sqlalchemy.orm import InstrumentedAttribute

from llmdocs.core.db import Base, Database, utcnow
from llmdocs.core.sqlite import in_thread

log = structlog.get_logger(__name__)
BATCH = 500  # rows a statement deletes at most: a short write lock on SQLite


def cutoff(days: float) -> datetime:
    """The time before which a class kept `days` days is due."""
    return utcnow() - timedelta(days=days)


async def delete_batches(database: Database, model: type[Base],
                         key: InstrumentedAttribute[Any], due: ColumnElement[bool],
                         *, batch: int = BATCH,
                         removing: Callable[[list[Any]], Awaitable[None]] | None = None
                         ) -> int:
    """Delete the rows of `model` where `due` holds, `batch` keys per transaction, and
    say how many went; `removing` sees each batch's keys first (to delete what hangs
    off them elsewhere). A row another replica deleted meanwhile is just not counted."""
    removed = 0
    while True:
        with in_thread():  # on SQLite, off the event loop
            async with database.transaction() as session:
                keys = list((await session.scalars(
                    select(key).where(due).limit(batch))).all())
                if not keys:
                    return removed
                if removing is not None:
                    await removing(keys)
                gone = await session.execute(delete(model).where(key.in_(keys), due))
                removed += cast(CursorResult[Any], gone).rowcount
        if len(keys) < batch:
            return removed


@asynccontextmanager
async def periodically(name: str, interval_seconds: float,
                       work: Callable[[], Awaitable[dict[str, int]]]) -> AsyncIterator[None]:
    """Run `work` every `interval_seconds` while the block runs (0: never); a failed
    round is logged and retried at the next one."""
    async def loop() -> None:
        while True:
            try:
                removed = await work()
                if any(removed.values()):
                    log.info("retention applied", task=name, **removed)
            except Exception as exc:  # the next round tries again
                log.warning("retention failed", task=name, error=repr(exc))
            await asyncio.sleep(interval_seconds)

    task = asyncio.create_task(loop(), name=name) if interval_seconds > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
