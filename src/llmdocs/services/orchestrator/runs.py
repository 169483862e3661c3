"""Run records: status, progress and result of each workflow run, and the lease that
says which replica executes it. A replica that dies stops renewing its lease; another
(or the same one restarted) claims the run with one conditional UPDATE and resumes it
from the checkpointer. No HTTP here."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import CursorResult, Table, bindparam, insert, or_, select, update

from llmdocs.core.audit import touched
from llmdocs.core.db import Database, json_param, utcnow
from llmdocs.core.events import Event, EventBus
from llmdocs.core.ids import new_id
from llmdocs.core.spaces import DEFAULT_SPACE
from llmdocs.services.orchestrator.errors import Unknown, WrongState
from llmdocs.services.orchestrator.models import WorkflowRun
from llmdocs.services.orchestrator.schemas import (
    FINISHED,
    Failure,
    StepRecord,
    WorkflowRunOut,
)

ACTIVE = ("pending", "running", "storing")  # a run that has, or needs, an executor
CANCELLABLE = ("pending", "running")
OWNED = ("running", "storing")  # a run its owner executes
RUNS = cast(Table, WorkflowRun.__table__)
STEPS = TypeAdapter(list[StepRecord])
# built once: a run's start, commit point and end are on every run's critical path
INSERT_RUN = insert(RUNS)
FINISH_RUN = (update(RUNS)
              .where(RUNS.c.id == bindparam("run_id"), RUNS.c.owner == bindparam("me"),
                     RUNS.c.status.in_(OWNED))
              .values(status=bindparam("to"), result=bindparam("out"),
                      steps=bindparam("done"), error=bindparam("why"),
                      failure=bindparam("kind"),
                      finished_at=bindparam("at"), lease_until=None))
# again at the commit point it reached (a step retried after an outage) the run is ours
STORING_RUN = (update(RUNS)
               .where(RUNS.c.id == bindparam("run_id"), RUNS.c.owner == bindparam("me"),
                      RUNS.c.status.in_(("running", "storing")))
               .values(status="storing"))


@dataclass(frozen=True)
class Viewer:
    """Whose runs a caller sees: one user's (None: anyone's), in these spaces (None: in
    any). A run outside them is answered as a missing one, so its id is not confirmed."""

    user_id: str | None = None
    spaces: frozenset[str] | None = None

    def sees(self, user_id: str, space: str) -> bool:
        return self.user_id in (None, user_id) and (self.spaces is None or space in self.spaces)


ANYONE = Viewer()


def _out(row: WorkflowRun) -> WorkflowRunOut:
    return WorkflowRunOut(
        id=row.id, workflow=row.workflow, version=row.version, status=row.status,
        user_id=row.user_id, space=row.space, input=json.loads(row.input),
        steps=[StepRecord.model_validate(s) for s in json.loads(row.steps)],
        result=json.loads(row.result) if row.result else None, error=row.error,
        failure=row.failure, attempts=row.attempts, created_at=row.created_at,
        started_at=row.started_at, finished_at=row.finished_at)


def _steps_json(steps: list[StepRecord]) -> str:
    return STEPS.dump_json(steps).decode()


class RunStore:
    """The records, and the events that announce a run's start and end: each written in
    the transaction of the record it announces (see `EventBus.transaction`)."""

    def __init__(self, database: Database, events: EventBus) -> None:
        self.database = database
        self.events = events

    async def create(self, workflow: str, version: str, user_id: str, data: dict[str, Any],
                     owner: str, lease_seconds: float,
                     announce: Callable[[WorkflowRunOut], Event]) -> WorkflowRunOut:
        now = utcnow()
        run = WorkflowRunOut(id=new_id(), workflow=workflow, version=version,
                             status="running", user_id=user_id,
                             space=data.get("space", DEFAULT_SPACE), input=data, steps=[],
                             result=None, error=None, attempts=1, created_at=now,
                             started_at=now, finished_at=None)
        async with self.events.transaction(self.database) as (conn, outbox):
            await conn.execute(INSERT_RUN, {
                **run.model_dump(exclude={"input", "steps"}), "input": json_param(data),
                "steps": "[]", "owner": owner,
                "lease_until": now + timedelta(seconds=lease_seconds)})
            outbox.append(announce(run))
        return run

    async def get(self, run_id: str, viewer: Viewer = ANYONE) -> WorkflowRunOut:
        """The run, when `viewer` sees it; one it does not is answered like a missing
        one, so its id is not confirmed to whoever asks."""
        async with self.database.session() as session:
            row = await session.get(WorkflowRun, run_id)
        touched(None if row is None else row.space)
        if row is None or not viewer.sees(row.user_id, row.space):
            raise Unknown(f"No run {run_id!r}.")
        return _out(row)

    async def recent(self, workflow: str | None, status: str | None, user_id: str | None,
                     limit: int, viewer: Viewer = ANYONE, space: str | None = None
                     ) -> list[WorkflowRunOut]:
        """The newest runs matching the filters, of those `viewer` sees (whatever the
        `user_id` and `space` filters ask for)."""
        query = select(WorkflowRun).order_by(WorkflowRun.created_at.desc()).limit(limit)
        for column, value in ((WorkflowRun.workflow, workflow), (WorkflowRun.status, status),
                              (WorkflowRun.user_id, user_id), (WorkflowRun.space, space),
                              (WorkflowRun.user_id, viewer.user_id)):
            if value is not None:
                query = query.where(column == value)
        if viewer.spaces is not None:
            query = query.where(WorkflowRun.space.in_(viewer.spaces))
        async with self.database.session() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_out(row) for row in rows]

    async def claim(self, run_id: str, owner: str, lease_seconds: float, *,
                    revive: bool = False) -> bool:
        """Take a run whose lease ran out (or, with `revive`, a failed or cancelled one):
        true for exactly one claimant."""
        now = utcnow()
        statuses = (*ACTIVE, "failed", "cancelled") if revive else ACTIVE
        query = (update(WorkflowRun)
                 .where(WorkflowRun.id == run_id, WorkflowRun.status.in_(statuses),
                        or_(WorkflowRun.lease_until.is_(None), WorkflowRun.lease_until < now,
                            WorkflowRun.status.in_(("failed", "cancelled"))))
                 .values(owner=owner, status="running", error=None, failure=None,
                         finished_at=None,
                         lease_until=now + timedelta(seconds=lease_seconds),
                         attempts=WorkflowRun.attempts + 1))
        async with self.database.transaction() as session:
            result = await session.execute(query)
        return bool(getattr(result, "rowcount", 0))

    async def orphans(self, now: datetime | None = None) -> list[str]:
        """Runs still active whose executor stopped renewing its lease."""
        query = select(WorkflowRun.id).where(WorkflowRun.status.in_(ACTIVE),
                                             WorkflowRun.lease_until < (now or utcnow()))
        async with self.database.session() as session:
            return list((await session.execute(query)).scalars().all())

    async def renew(self, run_ids: list[str], owner: str, lease_seconds: float) -> set[str]:
        """Extend our leases; returns the runs no longer ours to run (cancelled, or taken)."""
        if not run_ids:
            return set()
        until = utcnow() + timedelta(seconds=lease_seconds)
        async with self.database.transaction() as session:
            await session.execute(
                update(WorkflowRun)
                .where(WorkflowRun.id.in_(run_ids), WorkflowRun.owner == owner,
                       WorkflowRun.status.in_(OWNED))
                .values(lease_until=until))
            kept = (await session.execute(
                select(WorkflowRun.id).where(WorkflowRun.id.in_(run_ids),
                                             WorkflowRun.owner == owner,
                                             WorkflowRun.status.in_(OWNED)))).scalars().all()
        return set(run_ids) - set(kept)

    async def progress(self, run_id: str, steps: list[StepRecord]) -> None:
        async with self.database.transaction() as session:
            await session.execute(update(WorkflowRun).where(WorkflowRun.id == run_id)
                                  .values(steps=_steps_json(steps)))

    async def finish(self, run_id: str, owner: str, status: str, steps: list[StepRecord], *,
                     result: dict[str, Any] | None = None, error: str | None = None,
                     failure: Failure | None = None,
                     announce: Sequence[Event] = ()) -> datetime | None:
        """Record the end with every step, only if we still own the run and it is not
        finished, and with it the events that announce it; the time recorded, or None
        when it was not ours to record (and nothing is announced)."""
        assert status in FINISHED
        now = utcnow()
        values = {"run_id": run_id, "me": owner, "to": status, "why": error, "kind": failure,
                  "at": now,
                  "out": json_param(result) if result else None,
                  "done": _steps_json(steps)}
        async with self.events.transaction(self.database) as (conn, outbox):
            done = cast(CursorResult[Any], await conn.execute(FINISH_RUN, values))
            if done.rowcount:
                outbox.extend(announce)
        return now if done.rowcount else None

    async def storing(self, run_id: str, owner: str) -> bool:
        """The run's commit point, before it stores its result: true when it is ours and
        still running; false when a cancel came first (or another replica took it)."""
        async with self.database.engine.begin() as conn:
            done = cast(CursorResult[Any], await conn.execute(
                STORING_RUN, {"run_id": run_id, "me": owner}))
        return bool(done.rowcount)

    async def cancel(self, run_id: str) -> WorkflowRunOut:
        """Cancel a run that has not reached its commit point (see `storing`); a 409 once
        it has, or has finished."""
        async with self.database.transaction() as session:
            result = await session.execute(
                update(WorkflowRun).where(WorkflowRun.id == run_id,
                                          WorkflowRun.status.in_(CANCELLABLE))
                .values(status="cancelled", finished_at=utcnow(), lease_until=None,
                        error="cancelled on request"))
        run = await self.get(run_id)
        if not getattr(result, "rowcount", 0):
            if run.status == "storing":
                raise WrongState(f"Run {run_id} is storing its result: too late to "
                              "cancel, it finishes.")
            raise WrongState(f"Run {run_id} is already {run.status}.")
        return run
