"""The embedded checkpointer: LangGraph's SQLite saver, each async call one trip to a
thread of its own.

LangGraph's `AsyncSqliteSaver` goes through aiosqlite, which hands every cursor,
execute, commit and close to its worker thread separately: three or four round trips
between the event loop and the thread for each checkpoint write, two writes for each
step of a run, all on the run's critical path (durability "sync"). Here a whole write
(serialise, insert, commit) is one call of the synchronous `SqliteSaver` in one worker
thread, on the same tables, so a file written by either saver reads in the other.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.sqlite import SqliteSaver

T = TypeVar("T")
PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000")


class ThreadedSqliteSaver(SqliteSaver):
    """`SqliteSaver` whose async methods run the sync ones in one worker thread, so
    they are serialised the way one connection needs."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoints")

    async def _run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, partial(fn, *args, **kwargs))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._run(self.get_tuple, config)

    async def alist(self, config: RunnableConfig | None, *,
                    filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None,
                    limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        found = await self._run(lambda: list(self.list(config, filter=filter, before=before,
                                                       limit=limit)))
        for item in found:
            yield item

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata, new_versions: ChannelVersions
                   ) -> RunnableConfig:
        return await self._run(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        await self._run(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._run(self.delete_thread, thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await self._run(self.get_delta_channel_history, config=config,
                               channels=channels)

    async def aclose(self) -> None:
        """Finish what is queued, then close the connection in its own thread."""
        await self._run(self.conn.close)
        self._worker.shutdown(wait=True)


@asynccontextmanager
async def sqlite_checkpointer(path: Path) -> AsyncIterator[ThreadedSqliteSaver]:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, check_same_thread=False)
        for pragma in PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
        return conn

    saver = ThreadedSqliteSaver(await asyncio.to_thread(connect))
    try:
        await saver._run(saver.setup)
        yield saver
    finally:
        await saver.aclose()
