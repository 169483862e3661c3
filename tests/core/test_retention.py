"""Retention per data class: each service's task deletes the rows older than its
setting and keeps the recent and the unfinished ones; a second round (another replica)
deletes nothing more and fails nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from sqlalchemy import select

from llmdocs.core.config import Settings
from llmdocs.core.db import Base, Database, utcnow
from llmdocs.core.retention import delete_batches
from llmdocs.migrations import upgrade
from llmdocs.services import create_app
from llmdocs.services.gateway import forget_usage
from llmdocs.services.gateway.models import UsageRecord
from llmdocs.services.interpreter import forget_executions
from llmdocs.services.interpreter.models import Execution
from llmdocs.services.orchestrator import forget_runs
from llmdocs.services.orchestrator.models import WorkflowRun
from llmdocs.services.orchestrator.workflows import open_checkpointer

GUARD = 30.0  # a hang guard, not a performance bound
OLD = utcnow() - timedelta(days=100)
NEW = utcnow() - timedelta(days=1)


async def ids(database: Database, model: type[Any]) -> set[str]:
    async with database.session() as session:
        return set((await session.scalars(select(model.id))).all())


async def add(database: Database, *rows: Base) -> None:
    async with database.transaction() as session:
        session.add_all(rows)


def execution(id: str, when: datetime, status: str) -> Execution:
    return Execution(id=id, run_id=id, user_id="ann", query="q", interpretation="{}",
                     status=status, created_at=when, updated_at=when)


def run(id: str, when: datetime, status: str) -> WorkflowRun:
    return WorkflowRun(id=id, workflow="w", version="1", status=status, user_id="ann",
                       input="{}", steps="[]", attempts=1, created_at=when,
                       finished_at=when if status != "running" else None)


def usage(id: str, when: datetime) -> UsageRecord:
    return UsageRecord(id=id, created_at=when, day=when.date().isoformat(), user_id="ann",
                       key_id="k", provider="p", model="m", prompt_tokens=1,
                       completion_tokens=1, cost_micros=1, cached=False, latency_ms=1.0)


@pytest.fixture
async def database(database_url: str) -> Any:
    database = Database(database_url)
    await database.migrate(upgrade)
    yield database
    await database.dispose()


async def test_old_executions_go_recent_and_running_ones_stay(database: Database) -> None:
    await add(database, execution("old", OLD, "completed"), execution("new", NEW, "failed"),
              execution("live", OLD, "running"))
    assert await forget_executions(database, 0) == {}  # 0: kept forever
    assert await forget_executions(database, 30) == {"executions": 1}
    assert await ids(database, Execution) == {"new", "live"}
    assert await forget_executions(database, 30) == {"executions": 0}


async def test_old_usage_rows_go_in_batches(database: Database) -> None:
    await add(database, *(usage(f"old{n}", OLD) for n in range(7)), usage("new", NEW))
    assert await forget_usage(database, 0) == {}
    assert await ids(database, UsageRecord) == {f"old{n}" for n in range(7)} | {"new"}
    # three rows a batch: three rounds, each its own transaction
    due = UsageRecord.created_at < utcnow() - timedelta(days=30)
    assert await delete_batches(database, UsageRecord, UsageRecord.id, due, batch=3) == 7
    assert await ids(database, UsageRecord) == {"new"}
    await add(database, usage("old", OLD))
    assert await forget_usage(database, 30) == {"usage": 1}


async def test_old_runs_go_with_their_checkpoints(database: Database,
                                                  database_url: str) -> None:
    await add(database, run("old", OLD, "completed"), run("new", NEW, "completed"),
              run("live", OLD, "running"))
    async with open_checkpointer(database_url) as checkpointer:
        for thread in ("old", "new"):
            config: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
            await checkpointer.aput(config, empty_checkpoint(), {}, {})
        assert await forget_runs(database, checkpointer, 30) == {"runs": 1}
        assert await ids(database, WorkflowRun) == {"new", "live"}

        def thread_of(name: str) -> Any:
            return {"configurable": {"thread_id": name, "checkpoint_ns": ""}}

        assert await checkpointer.aget_tuple(thread_of("old")) is None
        assert await checkpointer.aget_tuple(thread_of("new")) is not None
        assert await forget_runs(database, checkpointer, 30) == {"runs": 0}


async def test_the_interpreter_forgets_old_executions_while_it_runs(
        settings: Settings, serve: Any) -> None:
    quick = settings.model_copy(update={"retention_interval_seconds": 0.05})
    await serve(create_app("interpreter", quick))  # its start creates the tables
    database = Database(quick.database_url)
    try:
        await add(database, execution("old", OLD, "completed"), execution("new", NEW, "failed"))
        async with asyncio.timeout(GUARD):
            while "old" in await ids(database, Execution):
                await asyncio.sleep(0.05)
        assert await ids(database, Execution) == {"new"}
    finally:
        await database.dispose()
