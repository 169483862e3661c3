"""The run record's commit point on SQLite and PostgreSQL: before a run stores its
result it turns "storing"; from then on a cancel is refused and the run can only
finish, and a cancel that came first keeps it from storing anything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from llmdocs.core.config import Settings
from llmdocs.core.db import Database, utcnow
from llmdocs.core.events import make_event
from llmdocs.core.events.factory import create_event_bus
from llmdocs.migrations import upgrade
from llmdocs.services.orchestrator.errors import Unknown, WrongState
from llmdocs.services.orchestrator.runs import RunStore
from llmdocs.services.orchestrator.schemas import WorkflowRunOut

ME, OTHER = "replica-a", "replica-b"


@pytest.fixture
async def runs(database_url: str, settings: Settings) -> AsyncIterator[RunStore]:
    database = Database(database_url)
    await database.migrate(upgrade)
    yield RunStore(database, create_event_bus(settings, database))
    await database.dispose()


async def started(runs: RunStore, lease_seconds: float = 30) -> WorkflowRunOut:
    return await runs.create("document-generation", "1", "u1", {"query": "q"}, ME,
                             lease_seconds, lambda run: make_event(
                                 "orchestrator", "llmdocs.workflow.started", {"run_id": run.id}))


async def test_a_storing_run_cannot_be_cancelled_and_finishes(runs: RunStore) -> None:
    run = await started(runs)
    assert not await runs.storing(run.id, OTHER)  # only its owner reaches the point
    assert await runs.storing(run.id, ME)
    assert (await runs.get(run.id)).status == "storing"
    with pytest.raises(WrongState) as refused:
        await runs.cancel(run.id)
    assert "storing" in refused.value.detail
    assert await runs.renew([run.id], ME, 30) == set()  # still ours: the lease goes on
    assert await runs.finish(run.id, ME, "completed", [], result={"document_id": "d"})
    done = await runs.get(run.id)
    assert done.status == "completed" and done.result == {"document_id": "d"}
    with pytest.raises(WrongState) as late:
        await runs.cancel(run.id)
    assert "already completed" in late.value.detail


async def test_a_cancel_that_comes_first_stops_the_run_before_it_stores(
        runs: RunStore) -> None:
    run = await started(runs)
    cancelled = await runs.cancel(run.id)
    assert cancelled.status == "cancelled" and cancelled.error == "cancelled on request"
    assert not await runs.storing(run.id, ME)
    assert not await runs.finish(run.id, ME, "completed", [])  # nor records an end
    assert (await runs.get(run.id)).status == "cancelled"
    assert await runs.renew([run.id], ME, 30) == {run.id}  # lost to its owner
    with pytest.raises(Unknown):
        await runs.cancel("0190aaaa-0000-7000-8000-000000000000")


async def test_a_storing_run_whose_replica_died_is_claimed_and_resumed(
        runs: RunStore) -> None:
    run = await started(runs, lease_seconds=0.01)
    assert await runs.storing(run.id, ME)
    assert run.id in await runs.orphans(utcnow() + timedelta(seconds=1))
    await asyncio.sleep(0.05)  # the lease runs out
    assert await runs.claim(run.id, OTHER, 30)
    resumed = await runs.get(run.id)
    assert resumed.status == "running" and resumed.attempts == 2
    assert await runs.storing(run.id, OTHER)  # the new owner reaches the point again
