"""SQLite for the async engine: statements run on the event loop, heavy ones on the
connection's own thread, and a busy database is waited for without blocking the loop
(a thread hand-off costs more than a statement: docs/internals.md)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

T = TypeVar("T")
BUSY_SECONDS = 10.0  # how long a statement waits for a lock, as `busy_timeout` did
HEAVY_PARAMETERS = 1 << 20  # characters of parameters beyond which a statement is heavy
# plain SQLITE_BUSY and SQLITE_BUSY_RECOVERY: retrying helps. SQLITE_BUSY_SNAPSHOT does
# not (the transaction must start over), so it is raised at once, as before.
_RETRY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_BUSY | (1 << 8)})
_in_thread: ContextVar[bool] = ContextVar("sqlite_in_thread", default=False)
WAL_BOUND = "wal_autocheckpoint=16384"  # pages of 4 KiB: SQLite folds the log past 64 MB
FOLD_EVERY = 256  # commits between two folds of the log by `WalFolder`


@contextmanager
def in_thread() -> Iterator[None]:
    """Statements in this block run on the connection's thread: for work that takes
    long enough that the loop should go on meanwhile."""
    token = _in_thread.set(True)
    try:
        yield
    finally:
        _in_thread.reset(token)


def _heavy(parameters: Any) -> bool:
    if not isinstance(parameters, (tuple, list)):
        return False
    return sum(len(p) for p in parameters if isinstance(p, (str, bytes))) > HEAVY_PARAMETERS


class WalFolder:
    """Folds a database's write-ahead log back into its file from a worker thread, so
    no commit on the loop pays for the fold's disk sync (docs/internals.md)."""

    def __init__(self, path: str | Path) -> None:
        self._path = path
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-fold")
        self._commits = 0
        self._folding: Future[None] | None = None

    def committed(self) -> None:
        self._commits += 1
        if self._commits % FOLD_EVERY == 0 and (self._folding is None
                                                or self._folding.done()):
            self._folding = self._worker.submit(self._fold)

    def _fold(self) -> None:
        conn = sqlite3.connect(self._path)
        try:
            # waits for no one; SQLite starts the log over at the next write once caught up
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    async def aclose(self) -> None:
        """Let a fold in progress finish."""
        await asyncio.to_thread(self._worker.shutdown, wait=True)


class OneTripCursor:
    """The part of aiosqlite's cursor that SQLAlchemy's adapter uses."""

    arraysize = 1

    def __init__(self, connection: OneTripConnection) -> None:
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
         self._rows) = await self._connection.call(
            partial(self._run, sql, parameters, many), heavy=many or _heavy(parameters))
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
    """aiosqlite's connection, calling sqlite3 on the loop unless told otherwise."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], chunk: int,
                 on_commit: Callable[[], None] | None = None) -> None:
        super().__init__(connector, chunk)
        self._on_commit = on_commit
        # calls handed to the thread, and those it finished: each counter has one writer
        # (the loop, the thread), so no lock; while they differ the thread owns sqlite3
        self._sent = 0
        self._finished = 0

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)

    async def commit(self) -> None:
        await super().commit()
        if self._on_commit is not None:
            self._on_commit()

    async def _execute(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """aiosqlite's commit, rollback and close come here: on the loop."""
        return await self.call(partial(fn, *args, **kwargs), heavy=False)

    async def call(self, function: Callable[[], T], *, heavy: bool) -> T:
        """Run `function` against sqlite3: on the loop, or on the thread when heavy (or
        inside `in_thread()`, or while the thread still has work, which keeps the order);
        a busy database is retried until `BUSY_SECONDS` have passed."""
        deadline, pause = 0.0, 0.001
        while True:
            try:
                if heavy or _in_thread.get() or self._sent != self._finished:
                    return await self._on_thread(function)
                if not self._running or self._connection is None:
                    raise ValueError("Connection closed")
                return function()
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", None) not in _RETRY_CODES:
                    raise
                now = time.monotonic()
                deadline = deadline or now + BUSY_SECONDS
                if now >= deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.05)

    async def _on_thread(self, function: Callable[[], T]) -> T:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")

        def job() -> T:
            try:
                return function()
            finally:
                self._finished += 1

        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._sent += 1
        self._tx.put_nowait((future, job))
        return await future


def _connect(database: str | bytes, on_commit: Callable[[], None] | None = None,
             **kwargs: Any) -> OneTripConnection:
    """As `aiosqlite.connect`, with the connection above."""
    location = database.decode() if isinstance(database, bytes) else str(database)
    kwargs["check_same_thread"] = False  # opened on the thread, used on the loop too
    connection = OneTripConnection(partial(sqlite3.connect, location, **kwargs), 64,
                                   on_commit)
    connection._thread.daemon = True  # as SQLAlchemy does: never block interpreter exit
    return connection


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI module, connecting with `OneTripConnection`; each
    commit is told to `on_commit` (a `WalFolder`)."""

    def __init__(self, on_commit: Callable[[], None] | None = None) -> None:
        super().__init__(aiosqlite, sqlite3)
        self._on_commit = on_commit

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        return super().connect(*args, async_creator_fn=partial(
            _connect, on_commit=self._on_commit), **kwargs)
