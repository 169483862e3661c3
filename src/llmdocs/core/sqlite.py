"""SQLite for the async engine: aiosqlite's one thread per connection, one round trip
to it per statement.

SQLAlchemy's aiosqlite adapter makes three or four trips per statement (open a cursor,
execute, fetch the rows, close the cursor), each a hand-off to the connection's thread
and back. A trip costs 0.2 ms on an idle event loop and up to 0.9 ms on a busy one (the
thread waits for the GIL to hand back its result); the statement itself often costs
0.01-0.05 ms. Here a cursor runs all four steps in one trip and keeps what the adapter
reads afterwards: description, rowcount, lastrowid and the rows. The statements, the
transactions and the errors are sqlite3's, as before.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi


class OneTripCursor:
    """The part of aiosqlite's cursor that SQLAlchemy's adapter uses."""

    arraysize = 1

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _run(self, sql: str, parameters: Any, many: bool) -> tuple[Any, int, int | None,
                                                                   list[Any]]:
        cursor = self._connection._conn.cursor()
        try:
            if many:
                cursor.executemany(sql, parameters)
            else:
                cursor.execute(sql, parameters)
            rows = cursor.fetchall() if cursor.description else []
            return cursor.description, cursor.rowcount, cursor.lastrowid, rows
        finally:
            cursor.close()

    async def _trip(self, sql: str, parameters: Any, many: bool) -> OneTripCursor:
        (self.description, self.rowcount, self.lastrowid,
         self._rows) = await self._connection._execute(  # type: ignore[no-untyped-call]
            self._run, sql, parameters, many)
        return self

    async def execute(self, sql: str, parameters: Any = ()) -> OneTripCursor:
        return await self._trip(sql, parameters, False)

    async def executemany(self, sql: str, parameters: Any) -> OneTripCursor:
        return await self._trip(sql, parameters, True)

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = size or self.arraysize
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def close(self) -> None:
        self._rows = []


class OneTripConnection(aiosqlite.Connection):
    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)


def _connect(database: str | bytes, **kwargs: Any) -> OneTripConnection:
    """As `aiosqlite.connect`, with the cursor above."""
    location = database.decode() if isinstance(database, bytes) else str(database)
    connection = OneTripConnection(partial(sqlite3.connect, location, **kwargs), 64)
    connection._thread.daemon = True  # as SQLAlchemy does: never block interpreter exit
    return connection


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI module, connecting with `OneTripConnection`."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        return super().connect(*args, async_creator_fn=_connect, **kwargs)
