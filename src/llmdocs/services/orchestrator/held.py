"""What the orchestrator holds about a person, for privacy requests: the runs they
started with their checkpoints (the graph state holds their query and the model's
answers), the services they registered, and the answers kept for their retries."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select, update

from llmdocs.core.db import Database
from llmdocs.core.privacy import Erasure, Records, forget_keys, rowcount
from llmdocs.services.orchestrator.models import RegisteredService, RunKey, WorkflowRun
from llmdocs.services.orchestrator.runs import _out
from llmdocs.services.orchestrator.workflows import Runner

REGISTRATION = ("name", "base_url", "title", "version", "spec_url", "registered_at",
                "updated_at")


class OrchestratorData:
    """The orchestrator's `SubjectData`."""

    def __init__(self, database: Database, runner: Runner) -> None:
        self.database = database
        self.runner = runner

    async def _run_ids(self, subject: str) -> list[str]:
        async with self.database.session() as session:
            return list((await session.execute(
                select(WorkflowRun.id).where(WorkflowRun.user_id == subject))).scalars())

    async def _graph_state(self, run_id: str) -> dict[str, Any] | None:
        found = await self.runner.checkpointer.aget_tuple(
            {"configurable": {"thread_id": run_id}})
        if found is None:
            return None
        # the state's values are the graph's own (models, dicts): as JSON can hold them
        values = json.loads(json.dumps(found.checkpoint.get("channel_values", {}),
                                       default=str))
        return {"run_id": run_id, "values": values}

    async def export(self, subject: str) -> Records:
        async with self.database.session() as session:
            runs = (await session.execute(select(WorkflowRun).where(
                WorkflowRun.user_id == subject).order_by(WorkflowRun.created_at))).scalars()
            out = [_out(row).model_dump(mode="json") for row in runs]
            owned = (await session.execute(select(RegisteredService).where(
                RegisteredService.owner == subject))).scalars()
            services = [{field: getattr(row, field) for field in REGISTRATION}
                        for row in owned]
        states = [state for run in out
                  if (state := await self._graph_state(run["id"])) is not None]
        return {"runs": out, "checkpoints": states, "registered_services": services}

    async def erase(self, erasure: Erasure) -> dict[str, int]:
        """Runs and their checkpoints are deleted; a service they registered stays in
        the catalog (others' tools use it), its owner the receiver of a transfer or
        else the pseudonym."""
        run_ids = await self._run_ids(erasure.subject)
        await self.runner.stop(run_ids)
        for run_id in run_ids:  # before the rows: a crash between resumes with them
            await self.runner.checkpointer.adelete_thread(run_id)
        async with self.database.transaction() as session:
            runs = await session.execute(delete(WorkflowRun).where(
                WorkflowRun.user_id == erasure.subject))
            services = await session.execute(
                update(RegisteredService).where(RegisteredService.owner == erasure.subject)
                .values(owner=erasure.transfer_to or erasure.pseudonym))
        keys = await forget_keys(self.database, RunKey, erasure.subject)
        return {"runs deleted": rowcount(runs), "run checkpoints deleted": len(run_ids),
                "service registrations " + ("transferred" if erasure.transfer_to
                                            else "pseudonymised"): rowcount(services),
                "kept answers deleted": keys}
