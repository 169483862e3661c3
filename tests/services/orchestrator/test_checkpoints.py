"""The embedded checkpointer: LangGraph's SQLite tables and each value once per version,
written on the event loop, a task's writes committed with the checkpoint of its step."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    empty_checkpoint,
)
from langgraph.checkpoint.sqlite import SqliteSaver

from llmdocs.services.orchestrator.checkpoints import sqlite_checkpointer


def _writes_seen_from_outside(path: Path) -> list[str]:
    """What another connection (another process after a crash) reads."""
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT channel FROM writes ORDER BY idx")]
    finally:
        conn.close()


async def test_task_writes_commit_with_the_next_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.db"
    async with sqlite_checkpointer(path) as saver:
        config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        saved = await saver.aput(config, empty_checkpoint(), {}, {})
        await saver.aput_writes(saved, [("draft", "text")], task_id="write")
        assert _writes_seen_from_outside(path) == []  # waits for the step's checkpoint
        found = await saver.aget_tuple(saved)
        assert found is not None and [w[1] for w in found.pending_writes or []] == ["draft"]
        await saver.aput(saved, empty_checkpoint(), {}, {})
        assert _writes_seen_from_outside(path) == ["draft"]

        error = next(iter(WRITES_IDX_MAP))  # LangGraph's own: an error, an interrupt
        await saver.aput_writes(saved, [(error, "boom")], task_id="review")
        assert error in _writes_seen_from_outside(path)  # ends the step early: at once


def _checkpoint(values: dict[str, Any], versions: ChannelVersions) -> Checkpoint:
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = values
    checkpoint["channel_versions"] = versions
    return checkpoint


def _rows(path: Path, sql: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


async def test_a_value_is_written_once_per_version(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.db"
    context = "spec " * 2000  # a large channel the later steps leave alone
    async with sqlite_checkpointer(path) as saver:
        config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        first = await saver.aput(config, _checkpoint(
            {"context": context, "draft": "one"}, {"context": "1", "draft": "1"}),
            {}, {"context": "1", "draft": "1"})
        second = await saver.aput(first, _checkpoint(
            {"context": context, "draft": "two"}, {"context": "1", "draft": "2"}),
            {}, {"draft": "2"})

        # the large value is stored once, not in each checkpoint
        assert sorted(_rows(path, "SELECT channel, version FROM checkpoint_blobs")) == [
            ("context", "1"), ("draft", "1"), ("draft", "2")]
        assert all(len(size) < len(context) for size, in _rows(
            path, "SELECT checkpoint FROM checkpoints"))

        # and each checkpoint reads back whole, at its own versions
        for saved, draft in ((first, "one"), (second, "two"), (config, "two")):
            found = await saver.aget_tuple(saved)
            assert found is not None
            assert found.checkpoint["channel_values"] == {"context": context, "draft": draft}
        history = [t.checkpoint["channel_values"]["draft"]
                   async for t in saver.alist(config)]
        assert history == ["two", "one"]

        await saver.adelete_thread("t")
        assert _rows(path, "SELECT * FROM checkpoint_blobs") == []
        assert await saver.aget_tuple(config) is None


async def test_a_run_goes_on_from_a_checkpoint_langgraphs_saver_wrote(
        tmp_path: Path) -> None:
    """A run in flight across an upgrade: its last checkpoint holds the values inside."""
    path = tmp_path / "checkpoints.db"
    config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    with SqliteSaver.from_conn_string(str(path)) as stock:
        old = stock.put(config, _checkpoint({"context": "spec", "draft": "old"},
                                            {"context": "1", "draft": "1"}),
                        {}, {"context": "1", "draft": "1"})
    async with sqlite_checkpointer(path) as saver:
        found = await saver.aget_tuple(config)
        assert found is not None
        assert found.checkpoint["channel_values"] == {"context": "spec", "draft": "old"}
        await saver.aput(old, _checkpoint({"context": "spec", "draft": "new"},
                                          {"context": "1", "draft": "2"}), {}, {"draft": "2"})
        found = await saver.aget_tuple(config)
        assert found is not None
        assert found.checkpoint["channel_values"] == {"context": "spec", "draft": "new"}
