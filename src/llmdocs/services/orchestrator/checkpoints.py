"""The embedded checkpointer: LangGraph's SQLite saver, writing on the event loop.

A run writes its tasks' writes and a checkpoint per step (durability "sync": before
the next step starts), so every write is on the run's critical path. LangGraph's
`AsyncSqliteSaver` hands each cursor, execute, commit and close to aiosqlite's thread:
three or four round trips per write, and a round trip costs far more than the statement,
because the thread needs the GIL back from a busy event loop (measured: a checkpoint read
0.05 ms in SQLite, 0.9 ms with the round trip). Here each read and write is one call of
the synchronous `SqliteSaver` on the loop, and a step commits once, with its checkpoint
(see `LoopSqliteSaver`); in WAL mode with `synchronous=NORMAL` a commit writes the log
without syncing it (0.1-0.2 ms, 0.4 ms at p90).
The one slow operation, folding the log back into the database file (it syncs the disk),
is off the loop: a `WalFolder` (as for the main database) folds it from a worker thread
every `FOLD_EVERY` writes. Only if writes never pause long enough for that (the log
reaches 64 MB) does SQLite's own checkpoint run, on the loop, after a commit: a bound,
not the rule.
The tables are LangGraph's own, so a file written by either saver reads in the other.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.sqlite import SqliteSaver

from llmdocs.core.sqlite import WAL_BOUND, WalFolder

PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000", WAL_BOUND)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False)
    for pragma in PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    return conn


class LoopSqliteSaver(SqliteSaver):
    """`SqliteSaver` whose async methods are its sync ones, run on the loop; the WAL is
    folded into the database by a worker thread.

    A task's writes commit with the step's checkpoint that follows them, not on their
    own: one commit per step instead of two. A crash in between loses only the writes of
    tasks whose step had not ended, and those tasks run again on resume, as they would
    without the writes (every step of ours may run twice: the store step finds the
    document of an earlier try). Writes that end a step early (an error, an interrupt)
    commit at once."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        super().__init__(conn)
        self._folder = WalFolder(path)
        self._deferring = False  # put_writes leaves its commit to the next put

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        with super().cursor(transaction and not self._deferring) as cur:
            yield cur

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(self, config: RunnableConfig | None, *,
                    filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None,
                    limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        for item in list(self.list(config, filter=filter, before=before, limit=limit)):
            yield item

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata, new_versions: ChannelVersions
                   ) -> RunnableConfig:
        saved = self.put(config, checkpoint, metadata, new_versions)
        self._folder.committed()
        return saved

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        # LangGraph's own channels (error, interrupt, ...) are the writes that matter
        # without a checkpoint after them
        self._deferring = not any(channel in WRITES_IDX_MAP for channel, _ in writes)
        try:
            self.put_writes(config, writes, task_id, task_path)
        finally:
            self._deferring = False

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return self.get_delta_channel_history(config=config, channels=channels)

    async def aclose(self) -> None:
        """Commit writes still waiting for a checkpoint, let a fold in progress finish,
        then close the connection."""
        self.conn.commit()
        await self._folder.aclose()
        self.conn.close()


@asynccontextmanager
async def sqlite_checkpointer(path: Path) -> AsyncIterator[LoopSqliteSaver]:
    saver = LoopSqliteSaver(await asyncio.to_thread(_connect, path), path)
    try:
        await asyncio.to_thread(saver.setup)
        yield saver
    finally:
        await saver.aclose()
