"""The embedded checkpointer: LangGraph's SQLite tables, written on the event loop, a
task's writes committed with the checkpoint of its step."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import WRITES_IDX_MAP, empty_checkpoint

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
