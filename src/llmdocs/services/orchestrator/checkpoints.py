"""The embedded checkpointer: LangGraph's SQLite saver run on the loop, one commit per step
and each channel's value stored once per version, because aiosqlite's thread round trips
dominated every write (0.9 ms against 0.05 ms) and whole-state copies tripled the size."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from llmdocs.core.crypto import CryptoError, KeyRing
from llmdocs.core.sqlite import WAL_BOUND, WalFolder

PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000",
           "secure_delete=ON", WAL_BOUND)  # an erased run's rows are zeroed (core.scrub)
BLOBS = """CREATE TABLE IF NOT EXISTS checkpoint_blobs (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL,
    version TEXT NOT NULL,
    type TEXT NOT NULL,
    blob BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
)"""
INSERT_BLOB = ("INSERT OR REPLACE INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, "
               "version, type, blob) VALUES (?, ?, ?, ?, ?, ?)")
INSERT_CHECKPOINT = ("INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, "
                     "checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)")
EMPTY = "empty"  # a channel with no value at that version (LangGraph's savers' marker)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False)
    for pragma in PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    return conn


class LoopSqliteSaver(SqliteSaver):
    """`SqliteSaver` run on the loop: a task's writes commit with the next checkpoint (one
commit per step; a crash only reruns that step's tasks, which every step of ours allows)."""

    def __init__(self, conn: sqlite3.Connection, path: Path,
                 serde: SerializerProtocol | None = None) -> None:
        super().__init__(conn, serde=serde)
        self._folder = WalFolder(path)
        self._deferring = False  # put_writes leaves its commit to the next put

    # the default walks get_tuple, which fills in the values; SqliteSaver's own reads
    # the values inside its checkpoints, which are not there any more
    get_delta_channel_history = BaseCheckpointSaver.get_delta_channel_history

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        with super().cursor(transaction and not self._deferring) as cur:
            yield cur

    @contextmanager
    def _before_commit(self) -> Iterator[sqlite3.Cursor]:
        """A cursor whose statements commit with the next `cursor()`'s."""
        self._deferring = True
        try:
            with self.cursor() as cur:
                yield cur
        finally:
            self._deferring = False

    def setup(self) -> None:
        if not self.is_setup:
            super().setup()
            self.conn.execute(BLOBS)

    def put(self, config: RunnableConfig, checkpoint: Checkpoint,
            metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        """The checkpoint without its values (as `SqliteSaver` writes it otherwise), and
        the values of the channels it changed: one transaction."""
        values = checkpoint["channel_values"]
        thread_id = str(config["configurable"]["thread_id"])
        namespace = config["configurable"].get("checkpoint_ns", "")
        blobs = [(thread_id, namespace, channel, str(version),
                  *(self.serde.dumps_typed(values[channel]) if channel in values
                    else (EMPTY, None)))
                 for channel, version in new_versions.items()]
        type_, data = self.serde.dumps_typed({**checkpoint, "channel_values": {}})
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False)
        with self.cursor() as cur:
            cur.executemany(INSERT_BLOB, blobs)
            cur.execute(INSERT_CHECKPOINT, (
                thread_id, namespace, checkpoint["id"],
                config["configurable"].get("checkpoint_id"), type_, data,
                meta.encode("utf-8", "ignore")))
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": namespace,
                                 "checkpoint_id": checkpoint["id"]}}

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        found = super().get_tuple(config)
        return self._with_values(found) if found is not None else None

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None
             ) -> Iterator[CheckpointTuple]:
        # SqliteSaver's list holds the connection's lock while it yields: read it all first
        for found in [*super().list(config, filter=filter, before=before, limit=limit)]:
            yield self._with_values(found)

    def _with_values(self, found: CheckpointTuple) -> CheckpointTuple:
        """The checkpoint with its channels' values at its versions. A checkpoint
        `SqliteSaver` wrote has them inside; one written here after those (a run that
        went on across an upgrade) finds the values it did not change in them."""
        checkpoint = found.checkpoint
        missing = {channel: str(version) for channel, version
                   in checkpoint["channel_versions"].items()
                   if channel not in checkpoint["channel_values"]}
        if not missing:
            return found
        configurable = found.config["configurable"]
        with self.cursor(transaction=False) as cur:
            stored = {(channel, version): (type_, blob) for channel, version, type_, blob
                      in cur.execute("SELECT channel, version, type, blob "
                                     "FROM checkpoint_blobs "
                                     "WHERE thread_id = ? AND checkpoint_ns = ?",
                                     (str(configurable["thread_id"]),
                                      configurable.get("checkpoint_ns", "")))}
        values: dict[str, Any] = {}
        for channel, version in list(missing.items()):
            if (blob := stored.get((channel, version))) is not None:
                del missing[channel]
                if blob[0] != EMPTY:
                    values[channel] = self.serde.loads_typed(blob)
        parent = found.parent_config
        while missing and parent is not None and (older := super().get_tuple(parent)):
            inline = older.checkpoint
            for channel, version in list(missing.items()):
                if (channel in inline["channel_values"]
                        and str(inline["channel_versions"].get(channel)) == version):
                    values[channel] = inline["channel_values"][channel]
                    del missing[channel]
            parent = older.parent_config
        return found._replace(checkpoint={
            **checkpoint, "channel_values": {**checkpoint["channel_values"], **values}})

    def delete_thread(self, thread_id: str) -> None:
        with self._before_commit() as cur:
            cur.execute("DELETE FROM checkpoint_blobs WHERE thread_id = ?", (str(thread_id),))
        super().delete_thread(thread_id)

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


class RingCipher:
    """LangGraph's cipher protocol over the key ring: checkpoints hold the run's state
    (queries, documents, answers), sealed like every other record."""

    NAME = "llmdocs1"

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        return self.NAME, self.ring.seal(plaintext)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        if ciphername != self.NAME:
            raise CryptoError(f"a checkpoint is sealed by an unknown cipher {ciphername!r}")
        return self.ring.open(ciphertext)


def checkpoint_serde(ring: KeyRing | None) -> SerializerProtocol | None:
    """LangGraph's serializer, encrypting when a ring is set (None: its default)."""
    return None if ring is None else EncryptedSerializer(RingCipher(ring))


@asynccontextmanager
async def sqlite_checkpointer(path: Path, ring: KeyRing | None = None
                              ) -> AsyncIterator[LoopSqliteSaver]:
    saver = LoopSqliteSaver(await asyncio.to_thread(_connect, path), path,
                            checkpoint_serde(ring))
    try:
        await asyncio.to_thread(saver.setup)
        yield saver
    finally:
        await saver.aclose()
