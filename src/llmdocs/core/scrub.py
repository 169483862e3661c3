"""After an erasure, leave nothing of the erased rows in the database's files. SQLite
zeroes deleted rows (`secure_delete`, set on every connection by `Database`) but keeps
the old pages in its write-ahead log, and FTS5 keeps a removed row's terms in its older
segments until they are merged; PostgreSQL leaves dead tuples to VACUUM (docs/privacy.md)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import TYPE_CHECKING

import structlog
from fastapi import FastAPI

from llmdocs.core.db import Database

if TYPE_CHECKING:
    from llmdocs.core.privacy import Erasure, Records, SubjectData

log = structlog.get_logger(__name__)

CHECKPOINT_SECONDS = 10.0  # how long a truncating checkpoint waits for readers to finish
FTS5_TABLES = ("SELECT name FROM sqlite_master WHERE type = 'table' "
               "AND sql LIKE 'CREATE VIRTUAL TABLE%USING fts5%'")
# merges an FTS5 index into one segment; the name comes from sqlite_master, not a caller
OPTIMIZE = "INSERT INTO \"{0}\"(\"{0}\") VALUES ('optimize')"


def sqlite_path(database: Database) -> str | None:
    """The file of a SQLite database; None for PostgreSQL or an in-memory one."""
    if database.dialect != "sqlite" or ":memory:" in database.url:
        return None
    return database.url.split("///", 1)[-1].split("?", 1)[0] or None


def _scrub_file(path: str) -> dict[str, int]:
    """Merge every FTS5 index into one segment (`optimize`: the removed rows' terms
    leave it, their pages are zeroed), then fold the log into the file and cut it to
    nothing, so no earlier copy of a page survives in it."""
    conn = sqlite3.connect(path, timeout=CHECKPOINT_SECONDS)
    try:
        conn.execute("PRAGMA secure_delete=ON")
        indexes = [row[0] for row in conn.execute(FTS5_TABLES)]
        for name in indexes:
            conn.execute(OPTIMIZE.format(name))
        conn.commit()
        deadline = time.monotonic() + CHECKPOINT_SECONDS
        while True:
            busy, _log_pages, _moved = conn.execute(
                "PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return {"search indexes optimized": len(indexes), "logs truncated": 1}
            if time.monotonic() >= deadline:  # a long reader: the next erasure folds it
                log.warning("wal not truncated after an erasure: a reader held it", path=path)
                return {"search indexes optimized": len(indexes), "logs truncated": 0}
            time.sleep(0.05)
    finally:
        conn.close()


async def scrub(database: Database) -> dict[str, int]:
    """Make a database's files forget deleted rows, as far as the database allows."""
    path = sqlite_path(database)
    if path is None:
        return {}
    return await asyncio.to_thread(_scrub_file, path)


async def scrub_after_erasure(app: FastAPI) -> dict[str, int]:
    """What the kernel runs after a service erased a person: its database scrubbed, and
    the SQLite files of its own it lists in `app.state.sqlite_files` (the orchestrator's
    checkpoints), and its cache emptied (here, in Redis and in every replica)."""
    resources = app.state.resources
    done = await scrub(resources.database)
    for path in getattr(app.state, "sqlite_files", ()):
        for what, count in (await asyncio.to_thread(_scrub_file, str(path))).items():
            done[what] = done.get(what, 0) + count
    await resources.cache.clear()
    return done


class Scrubbing:
    """A service's own `SubjectData` that scrubs after erasing, as its `/privacy/held`
    route does: for the orchestrator, which erases its own part without the route."""

    def __init__(self, app: FastAPI, inner: SubjectData) -> None:
        self.app = app
        self.inner = inner

    async def export(self, subject: str) -> Records:
        return await self.inner.export(subject)

    async def erase(self, erasure: Erasure) -> dict[str, int]:
        erased = await self.inner.erase(erasure)
        await scrub_after_erasure(self.app)
        return erased
