"""Workflows by name and the runner of their runs: a run holds a lease and checkpoints
each step, so when its replica dies another resumes it without repeating finished steps."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from cachetools import LRUCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ValidationError

from llmdocs.core.auth import Principal
from llmdocs.core.client import NotConnected
from llmdocs.core.config import Settings
from llmdocs.core.crypto import KeyRing
from llmdocs.core.db import escaped
from llmdocs.core.errors import outage_status
from llmdocs.core.events import Event, make_event
from llmdocs.core.idempotency import IdempotencyKeys
from llmdocs.core.ids import new_id
from llmdocs.core.resources import Resources
from llmdocs.core.spaces import SpaceView
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.gateway.client import GatewayClient
from llmdocs.services.orchestrator import consistency, docgen
from llmdocs.services.orchestrator.checkpoints import checkpoint_serde, sqlite_checkpointer
from llmdocs.services.orchestrator.errors import Invalid, Refused, Unknown, WrongState
from llmdocs.services.orchestrator.models import RunKey
from llmdocs.services.orchestrator.registry import Registry
from llmdocs.services.orchestrator.runs import ANYONE, RunStore, Viewer
from llmdocs.services.orchestrator.schemas import (
    FINISHED,
    READ_DOCUMENTS,
    WRITE_DOCUMENTS,
    AgentRequest,
    Failure,
    RunRequest,
    StepRecord,
    WorkflowInfo,
    WorkflowRunOut,
    reads_documents,
    writes_documents,
)
from llmdocs.services.orchestrator.settings import DocgenSettings, WorkflowSettings
from llmdocs.services.orchestrator.workflow_state import WorkflowError, initial_state
from llmdocs.services.promptstore.client import PromptStoreClient

log = structlog.get_logger(__name__)
PROGRESS_SECONDS = 0.5  # how often a live run's steps reach its database record
# a completed run's checkpoints are deleted this long after its end: after its answer,
# not on the way to it
CHECKPOINTS_KEPT_SECONDS = 1.0
# a keyed start still unanswered after its longest wait (300 s) died with its replica
KEY_ABANDONED_AFTER = timedelta(minutes=10)
# a run whose result is stored is resumed after a failure, up to this many attempts (a
# failure that comes back every time is a bug: then the run fails)
RESUMES_ONCE_STORED = 5


@dataclass(frozen=True)
class Workflow:
    name: str
    version: str
    description: str
    steps: list[str]
    input_model: type[BaseModel]
    nodes: type[docgen.DocGen]  # whose `graph()` builds the workflow


WORKFLOWS: dict[str, Workflow] = {
    nodes.NAME: Workflow(nodes.NAME, nodes.VERSION, nodes.DESCRIPTION, nodes.STEPS,
                         nodes.REQUEST, nodes)
    for nodes in (docgen.DocGen, consistency.ConsistencyCheck)}
# the tool-using agent is served by its own route; listed so the catalog is complete
AGENT = WorkflowInfo(name="agent", version="1",
                     description="Reach a goal with the model choosing tools from the "
                     "catalog (POST /workflows/agent/runs).",
                     steps=["choose", "act", "answer"],
                     input_schema=AgentRequest.model_json_schema())


def failure_of(exc: Exception) -> Failure:
    """Why a step's error failed the run: a service that answered 5xx (or a limit) or
    could not be reached, or the database or Redis, is a dependency down ("timeout"
    when it was too slow); anything else is a fault of ours."""
    status = outage_status(exc)
    if status is None:
        return "internal"
    return "timeout" if status == 504 else "unavailable"


def catalog() -> list[WorkflowInfo]:
    return [WorkflowInfo(name=w.name, version=w.version, description=w.description,
                         steps=w.steps, input_schema=w.input_model.model_json_schema())
            for w in WORKFLOWS.values()] + [AGENT]


def checkpoint_file(database_url: str) -> Path | None:
    """The SQLite file of the embedded checkpointer; None on PostgreSQL. A file of its
    own beside the database: a checkpoint write never waits for the SQLite write lock
    the other services' writes hold (and sleeps in its busy handler), which made the
    checkpoints most of a run's overhead."""
    if not database_url.startswith("sqlite"):
        return None
    return Path(database_url.split("///", 1)[-1].split("?", 1)[0]).with_suffix(
        ".checkpoints.db")


@contextlib.asynccontextmanager
async def open_checkpointer(database_url: str, ring: KeyRing | None = None
                            ) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """A LangGraph checkpointer: in the ecosystem's PostgreSQL database, or in a SQLite
    file beside the embedded database; encrypted when a key ring is set."""
    path = checkpoint_file(database_url)
    if path is not None:
        async with sqlite_checkpointer(path, ring) as saver:
            yield saver
        return
    conninfo = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo, min_size=1, max_size=5, open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row})
    await pool.open()
    try:
        pg_saver = AsyncPostgresSaver(pool, serde=checkpoint_serde(ring))
        async with pool.connection() as conn_pg:
            # replicas starting together: one creates the tables, the others wait
            await conn_pg.execute("SELECT pg_advisory_lock(7411901)")
            try:
                await pg_saver.setup()
            finally:
                await conn_pg.execute("SELECT pg_advisory_unlock(7411901)")
        yield pg_saver
    finally:
        await pool.close()


class Runner:
    """Starts, watches, resumes and cancels this replica's runs."""

    def __init__(self, settings: Settings, resources: Resources,
                 checkpointer: BaseCheckpointSaver[Any], *, gateway: GatewayClient,
                 prompts: PromptStoreClient, docs: DocStoreClient,
                 run_settings: WorkflowSettings | None = None) -> None:
        self.settings = settings
        self.resources = resources
        self.run_settings = run_settings or WorkflowSettings()
        self.store = RunStore(resources.database, resources.events)
        self.keys = IdempotencyKeys(resources.database, RunKey, KEY_ABANDONED_AFTER)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.done: dict[str, asyncio.Event] = {}
        self.steps: dict[str, list[StepRecord]] = {}
        self.attempts: dict[str, int] = {}
        self.user_cancelled: set[str] = set()
        # runs whose end this replica just recorded, as recorded: what their waiters
        # answer without reading the record back
        self.ended: LRUCache[str, WorkflowRunOut] = LRUCache(maxsize=64)
        # per live run: the task that writes its steps to its record, and its stop
        self._progress: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}
        self.deps = docgen.Deps(
            gateway=gateway, prompts=prompts, docs=docs,
            registry=Registry(resources.database, resources.events),
            settings=DocgenSettings(
                max_revisions=self.run_settings.max_revisions,
                prose_tokens=self.run_settings.prose_tokens,
                review_tokens=self.run_settings.review_tokens,
                write_concurrency=self.run_settings.write_concurrency,
                judge_model=self.run_settings.judge_model,
                outage_seconds=self.run_settings.outage_seconds),
            on_step=self._on_step, storing=self._storing,
            blocked_networks=settings.blocked_networks,
            first_attempt=lambda run_id: self.attempts.get(run_id) == 1,
            default_open=settings.spaces_default_role != "none")
        self.checkpointer = checkpointer
        self.nodes = {name: w.nodes(self.deps) for name, w in WORKFLOWS.items()}
        self.graphs = {name: nodes.graph().compile(checkpointer=checkpointer)
                       for name, nodes in self.nodes.items()}
        self._deleting: set[asyncio.Task[None]] = set()  # completed runs' checkpoints
        self._watch: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        self._watch = asyncio.create_task(self._watch_leases())

    async def close(self) -> None:
        """Stop without failing the runs: their leases run out and they resume later."""
        tasks = [t for t in (self._watch, *self.tasks.values(), *self._deleting,
                             *(task for task, _ in self._progress.values())) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in (self.deps.gateway, self.deps.prompts, self.deps.docs):
            await client.aclose()

    async def _watch_leases(self) -> None:
        interval = max(self.run_settings.lease_seconds / 3, 0.2)
        while True:
            try:
                lost = await self.store.renew(list(self.tasks), self.owner,
                                              self.run_settings.lease_seconds)
                for run_id in lost:
                    task = self.tasks.get(run_id)
                    if task is not None:  # a run that ended during the renewal is gone
                        self.user_cancelled.add(run_id)
                        task.cancel()
                for run_id in await self.store.orphans():
                    if await self.store.claim(run_id, self.owner, self.run_settings.lease_seconds):
                        log.info("resuming run", run_id=run_id)
                        self._spawn(await self.store.get(run_id))
            except Exception:  # the watch must outlive a database hiccup
                log.exception("run lease watch failed")
            await asyncio.sleep(interval)

    # --- runs -------------------------------------------------------------------------

    @staticmethod
    def validate(name: str, body: RunRequest) -> tuple[Workflow, dict[str, Any]]:
        """The workflow `name` and the input a run of it would take, or the 404 or 422
        that would refuse it."""
        workflow = WORKFLOWS.get(name)
        if workflow is None:
            raise Unknown(f"No workflow named {name!r}; see GET /workflows.")
        try:
            return workflow, workflow.input_model.model_validate(body.input).model_dump()
        except ValidationError as exc:
            errors = [{"field": "input." + ".".join(str(p) for p in e["loc"]),
                       "message": e["msg"]} for e in exc.errors()]
            raise Invalid("The workflow input is not valid: "
                          + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                          errors=errors) from None

    @staticmethod
    def authorize(caller: Principal, view: SpaceView, data: dict[str, Any]) -> None:
        """A caller who may not read (or write) documents may not have a run read (or
        write) them for it, nor store what it makes in a space they may not write in."""
        if not view.may_write(data["space"]):
            raise Refused(f"The run would store its document in space {data['space']!r}: "
                          "that takes the editor or admin role there (or there is no "
                          "such space).")
        if reads_documents(data) and not caller.is_service \
                and not caller.allows(READ_DOCUMENTS):
            raise Refused("This run would read stored documents (its input names or "
                          f"searches them): that takes the {READ_DOCUMENTS} scope.")
        if writes_documents(data) and not caller.is_service \
                and not caller.allows(WRITE_DOCUMENTS):
            raise Refused("This run would store a new version of the document it "
                          f"refreshes: that takes the {WRITE_DOCUMENTS} scope.")

    async def check(self, name: str, body: RunRequest, caller: Principal, view: SpaceView
                    ) -> tuple[Workflow, dict[str, Any]]:
        """What `create` refuses, without starting anything: the input, the caller's
        right to what it names, and the sources its first steps would not find."""
        workflow, data = self.validate(name, body)
        self.authorize(caller, view, data)
        await self.nodes[name].check_sources(data)
        return workflow, data

    async def create(self, name: str, body: RunRequest, user_id: str, caller: Principal,
                     view: SpaceView) -> WorkflowRunOut:
        """A run of `name` for `user_id`, started once its input is valid and the caller
        may have it read what it names: an input refused leaves no record and no
        checkpoint."""
        workflow, data = await self.check(name, body, caller, view)
        # announced with the record, so before anything the run itself publishes
        run = await self.store.create(name, workflow.version, user_id, data,
                                      self.owner, self.run_settings.lease_seconds,
                                      lambda run: self._event("started", run,
                                                              user_id=user_id))
        self._spawn(run)
        return run

    def _spawn(self, run: WorkflowRunOut) -> None:
        self.ended.pop(run.id, None)
        self.steps[run.id] = list(run.steps)
        self.attempts[run.id] = run.attempts
        self.done.setdefault(run.id, asyncio.Event())
        task = asyncio.create_task(self._execute(run))
        self.tasks[run.id] = task
        task.add_done_callback(lambda _t: self._forget(run.id))

    def _forget(self, run_id: str) -> None:
        self.tasks.pop(run_id, None)
        self.steps.pop(run_id, None)
        self.attempts.pop(run_id, None)
        event = self.done.pop(run_id, None)
        if event is not None:
            event.set()

    async def _on_step(self, run_id: str, record: StepRecord) -> None:
        """Keep the step. This replica answers for its live runs from memory; the record
        in the database follows at most every PROGRESS_SECONDS (for other replicas), so
        a short run writes its steps once, at its end, and no write competes with the
        run's own checkpoints. A resumed run takes its steps from the checkpoint."""
        self.steps.setdefault(run_id, []).append(record)
        if run_id not in self._progress:
            stop = asyncio.Event()
            self._progress[run_id] = (asyncio.create_task(self._write_progress(run_id, stop)),
                                      stop)

    def _stored(self, run_id: str, failed: Exception) -> bool:
        """Whether the run's document is or may be stored (its steps, from the checkpoint
        too): its store step completed, or failed on an answer lost on its way back
        rather than on a connection no doc-store took (nothing sent)."""
        store = [s.status for s in self.steps.get(run_id, []) if s.name == "store"]
        return "completed" in store or (bool(store) and not isinstance(failed, NotConnected))

    async def _storing(self, run_id: str) -> None:
        """The commit point: a cancel that came first (here or at another replica) stops
        the run before anything is stored, as a lost lease does; after it, a cancel is
        refused and the run finishes."""
        if not await self.store.storing(run_id, self.owner):
            self.user_cancelled.add(run_id)
            raise asyncio.CancelledError

    async def _write_progress(self, run_id: str, stop: asyncio.Event) -> None:
        written = 0
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), PROGRESS_SECONDS)
                steps = self.steps.get(run_id)
                if stop.is_set() or steps is None or len(steps) == written:
                    return
                written = len(steps)
                await self.store.progress(run_id, list(steps))
        except Exception:  # only progress: the run's end records every step anyway
            log.warning("run progress not recorded", run_id=run_id, exc_info=True)
        finally:
            self._progress.pop(run_id, None)

    async def _stop_progress(self, run_id: str) -> list[StepRecord]:
        """Every step of the run, once no progress write is in flight (one could
        overwrite the final steps)."""
        if (progress := self._progress.get(run_id)) is not None:
            progress[1].set()
            await asyncio.gather(progress[0], return_exceptions=True)
        return list(self.steps.get(run_id, []))

    async def _finish(self, run: WorkflowRunOut, status: str, *,
                      result: dict[str, Any] | None = None, error: str | None = None,
                      failure: Failure | None = None, announce: Sequence[Event] = ()
                      ) -> None:
        """Record the run's end with all its steps, announced by `announce`; a run not
        ours to record any more is recorded and announced by its new owner."""
        steps = await self._stop_progress(run.id)
        finished_at = await self.store.finish(run.id, self.owner, status, steps,
                                              result=result, error=error, failure=failure,
                                              announce=announce)
        if finished_at is not None:
            self.ended[run.id] = run.model_copy(update={
                "status": status, "steps": steps, "result": result or None, "error": error,
                "failure": failure, "finished_at": finished_at})
            if status == "completed" and not self.run_settings.keep_checkpoints:
                task = asyncio.create_task(self._delete_checkpoints(run.id))
                self._deleting.add(task)
                task.add_done_callback(self._deleting.discard)

    async def _delete_checkpoints(self, run_id: str) -> None:
        await asyncio.sleep(CHECKPOINTS_KEPT_SECONDS)
        try:
            await self.checkpointer.adelete_thread(run_id)
        except Exception:  # only space: the run itself is recorded
            log.warning("checkpoints of a completed run not deleted", run_id=run_id,
                        exc_info=True)

    def view(self, run: WorkflowRunOut) -> WorkflowRunOut:
        """A run as it is now: a live run of this replica with the steps in memory."""
        steps = self.steps.get(run.id) if run.id in self.tasks else None
        if steps is None or len(steps) <= len(run.steps):
            return run
        return run.model_copy(update={"steps": list(steps)})

    async def _execute(self, run: WorkflowRunOut) -> None:
        config: dict[str, Any] = {"configurable": {"thread_id": run.id},
                                  "recursion_limit": self.run_settings.recursion_limit}
        try:
            final = await self._run_graph(run, config)
        except asyncio.CancelledError:
            if run.id in self.user_cancelled:
                self.user_cancelled.discard(run.id)
                await self.store.progress(run.id, await self._stop_progress(run.id))
                await self.resources.events.publish(
                    self._event("failed", run, error="cancelled on request"))
            raise
        except WorkflowError as exc:
            await self._fail(run, str(exc), "request")
        except Exception as exc:  # a dependency failed, or a step crashed
            failure = failure_of(exc)
            if self._stored(run.id, exc) and run.attempts < RESUMES_ONCE_STORED:
                # its document is (or may be) stored: failed, it would be an error beside
                # a stored result, and the caller's retry a second document. Its lease
                # runs out and a replica resumes it, finding the document of its store.
                log.warning("run left to resume: its result is stored", run_id=run.id,
                            failure=failure, error=str(exc))
                return
            if failure == "internal":
                log.exception("run failed", run_id=run.id)
            else:
                log.warning("run failed: a dependency is unavailable", run_id=run.id,
                            failure=failure, error=str(exc))
            await self._fail(run, f"{type(exc).__name__}: {exc}", failure)
        else:
            result = {**final.get("result", {}), "provenance": final.get("provenance")}
            # only the replica that records the end announces it: once per run
            await self._finish(run, "completed", result=result, announce=[
                *map(Event.model_validate, final.get("announce", [])),
                self._event("completed", run, document_id=result.get("document_id"))])

    async def _run_graph(self, run: WorkflowRunOut, config: dict[str, Any]) -> dict[str, Any]:
        """The graph's final state: run from the start, or from the last checkpoint."""
        graph = self.graphs[run.workflow]
        start: Any = initial_state(run.id, run.user_id, run.input)
        if self.attempts.get(run.id) != 1:  # a new run has no checkpoint to look for
            snapshot = await graph.aget_state(config)  # type: ignore[arg-type]
            values = snapshot.values or {}
            # the checkpoint knows every step that finished; the record may lag behind
            steps = self.steps.setdefault(run.id, [])
            known = {(s.name, s.started_at) for s in steps}
            steps += [record for record in map(StepRecord.model_validate,
                                               values.get("steps", []))
                      if (record.name, record.started_at) not in known]
            if values.get("result") and not snapshot.next:
                return dict(values)  # finished before the crash, not yet recorded
            # resume from the last checkpoint; with nothing left to run but no result (a
            # checkpoint cut short), start over: the store step finds an earlier document
            if values and snapshot.next:
                start = None
        # "sync": each step's checkpoint is on disk before the next step starts, so a
        # crash never loses a finished step
        return dict(await graph.ainvoke(  # type: ignore[call-overload]
            start, config, durability="sync"))

    async def _fail(self, run: WorkflowRunOut, reason: str, failure: Failure) -> None:
        # the reason may quote what a spec or a service sent: a lone surrogate in it made
        # the failure unrecordable, and the run was resumed and failed again for ever
        reason = escaped(reason, 2000)
        await self._finish(run, "failed", error=reason, failure=failure, announce=[
            self._event("failed", run, error=reason, failure=failure)])

    @staticmethod
    def _event(what: str, run: WorkflowRunOut, **data: Any) -> Event:
        return make_event("orchestrator", f"llmdocs.workflow.{what}",
                          {"workflow": run.workflow, "run_id": run.id, "space": run.space,
                           **data}, subject=run.id, space=run.space)

    async def wait(self, run_id: str, seconds: float, viewer: Viewer = ANYONE
                   ) -> WorkflowRunOut:
        """The run once finished, or as it is after `seconds`, when `viewer` sees it
        (else a 404, as a missing one is)."""
        if viewer != ANYONE:
            await self.store.get(run_id, viewer)  # a run's owner and space never change
        return self.view(await self._wait(run_id, seconds))

    async def _wait(self, run_id: str, seconds: float) -> WorkflowRunOut:
        event = self.done.get(run_id)
        if event is not None and seconds > 0:
            # a live run of this replica: its end is known here without a read
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), seconds)
            return self.ended.get(run_id) or await self.store.get(run_id)
        run = await self.store.get(run_id)
        if run.status in FINISHED or seconds <= 0:
            return run
        event = self.done.get(run_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            if event is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), deadline - loop.time())
                return await self.store.get(run_id)
            await asyncio.sleep(min(0.25, max(deadline - loop.time(), 0)))
            run = await self.store.get(run_id)
            if run.status in FINISHED:
                return run
            event = self.done.get(run_id)
        return await self.store.get(run_id)

    async def cancel(self, run_id: str, viewer: Viewer = ANYONE) -> WorkflowRunOut:
        """Cancel a run `viewer` sees."""
        if viewer != ANYONE:
            await self.store.get(run_id, viewer)
        run = await self.store.cancel(run_id)
        task = self.tasks.get(run_id)
        if task is not None:
            self.user_cancelled.add(run_id)
            task.cancel()
        return self.view(run)

    async def stop(self, run_ids: Iterable[str]) -> None:
        """Stop this replica's live runs among `run_ids`, whose records are going (an
        erasure): another replica's see their record gone at its next lease renewal."""
        tasks = [task for run_id in run_ids if (task := self.tasks.get(run_id)) is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def resume(self, run_id: str, viewer: Viewer = ANYONE) -> WorkflowRunOut:
        """Go on from the last checkpoint: a failed or cancelled run, or one whose
        executor died, that `viewer` sees."""
        run = await self.store.get(run_id, viewer)
        if run.status == "completed":
            raise WrongState(f"Run {run_id} is already completed.")
        if run_id in self.tasks or not await self.store.claim(
                run_id, self.owner, self.run_settings.lease_seconds, revive=True):
            raise WrongState(f"Run {run_id} is running in a live replica.")
        run = await self.store.get(run_id)
        self._spawn(run)
        return run

