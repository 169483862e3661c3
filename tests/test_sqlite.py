"""The SQLite driver shim (one thread round trip per statement) keeps what SQLAlchemy
reads from a cursor: rows, row counts, generated ids, errors and transactions."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from llmdocs.core.db import Database
from llmdocs.core.sqlite import OneTripDbapi

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
