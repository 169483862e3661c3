"""The SQLite driver shim (one thread round trip per statement) keeps what SQLAlchemy
reads from a cursor: rows, row counts, generated ids, errors and transactions."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from llmdocs.core.db import Database
from llmdocs.core.sqlite import FOLD_EVERY, HEAVY_PARAMETERS, OneTripDbapi, in_thread

META = sa.MetaData()
ITEMS = sa.Table("items", META, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("name", sa.String(20), unique=True))


async def test_statements_answer_as_through_aiosqlite(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    assert isinstance(database.engine.dialect.dbapi, OneTripDbapi)
    async with database.engine.begin() as conn:
        await conn.run_sync(META.create_all)
        first = await conn.execute(sa.insert(ITEMS).values(name="a"))
        assert first.inserted_primary_key == (1,)  # the cursor's lastrowid
        await conn.execute(sa.insert(ITEMS), [{"name": n} for n in "bcde"])  # executemany
        changed = await conn.execute(sa.update(ITEMS).where(ITEMS.c.id > 3).values(name=None))
        assert changed.rowcount == 2
        names = (await conn.execute(sa.select(ITEMS.c.name).order_by(ITEMS.c.id))).scalars()
        assert names.all() == ["a", "b", "c", None, None]
        partial = await conn.stream(sa.select(ITEMS.c.id).order_by(ITEMS.c.id))
        assert [row.id async for row in partial] == [1, 2, 3, 4, 5]

    with pytest.raises(IntegrityError):  # sqlite3's error, raised in the caller
        async with database.engine.begin() as conn:
            await conn.execute(sa.insert(ITEMS).values(name="z"))
            await conn.execute(sa.insert(ITEMS).values(name="a"))
    async with database.engine.connect() as conn:  # the failed transaction left nothing
        count = (await conn.execute(sa.select(sa.func.count()).select_from(ITEMS))).scalar()
        assert count == 5
    await database.dispose()


def _whose_thread(database: Database) -> None:
    """Each connection answers `thread()` with the id of the thread that runs it."""
    @sa.event.listens_for(database.engine.sync_engine, "connect")
    def register(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.create_function("thread", 0, threading.get_ident)


async def test_statements_run_on_the_loop_and_heavy_ones_on_the_thread(sqlite_url: str
                                                                       ) -> None:
    database = Database(sqlite_url)
    _whose_thread(database)
    loop_thread = threading.get_ident()
    async with database.engine.begin() as conn:
        await conn.run_sync(META.create_all)
        assert (await conn.execute(sa.text("SELECT thread()"))).scalar() == loop_thread
        with in_thread():
            off = (await conn.execute(sa.text("SELECT thread()"))).scalar()
        assert off != loop_thread
        big = "x" * (HEAVY_PARAMETERS + 1)  # a bulk batch's worth of parameters
        heavy = (await conn.execute(sa.text("SELECT thread() WHERE length(:v) > 0"),
                                    {"v": big})).scalar()
        assert heavy == off  # the connection's own thread
        await conn.execute(sa.insert(ITEMS), [{"name": n} for n in "ab"])  # executemany
        assert (await conn.execute(sa.select(sa.func.count()).select_from(ITEMS))
                ).scalar() == 2
    await database.dispose()


async def test_a_busy_database_is_waited_for_without_blocking_the_loop(sqlite_url: str
                                                                      ) -> None:
    """One connection holds the write lock while another wants it: the second waits
    (retrying) and the loop keeps running, so the first can finish and let it in."""
    database = Database(sqlite_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(META.create_all)
    holder = await database.engine.connect()
    await holder.begin()
    await holder.execute(sa.insert(ITEMS).values(name="first"))  # takes the write lock
    ticks = 0

    async def release_later() -> None:
        nonlocal ticks
        for _ in range(10):  # the loop runs while the other writer waits
            await asyncio.sleep(0.01)
            ticks += 1
        await holder.commit()

    releasing = asyncio.create_task(release_later())
    async with database.engine.begin() as conn:
        await conn.execute(sa.insert(ITEMS).values(name="second"))
    await releasing
    await holder.close()
    assert ticks == 10
    async with database.engine.connect() as conn:
        names = (await conn.execute(sa.select(ITEMS.c.name).order_by(ITEMS.c.id))).scalars()
        assert names.all() == ["first", "second"]
    await database.dispose()


async def test_the_log_is_folded_into_the_file_off_the_loop(sqlite_url: str,
                                                            tmp_path: Path) -> None:
    """Commits grow the write-ahead log; every FOLD_EVERY commits a worker thread folds
    it into the database file (SQLite itself would only past 64 MB, in a commit)."""
    database = Database(sqlite_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(META.create_all)
    file = tmp_path / "llmdocs.db"
    before = file.stat().st_size
    for i in range(FOLD_EVERY):
        async with database.engine.begin() as conn:
            await conn.execute(sa.insert(ITEMS).values(name=f"{i:04d}" + "x" * 10))
    for _ in range(200):  # the fold runs in the background: give it up to 10 s
        if file.stat().st_size > before:
            break
        await asyncio.sleep(0.05)
    assert file.stat().st_size > before  # the rows reached the file, not only the log
    await database.dispose()
