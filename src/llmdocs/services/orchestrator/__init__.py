"""Orchestrator: service registry, workflow definitions and runs (LangGraph), tool catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI

from llmdocs.core.db import Database
from llmdocs.core.service import MODEL_ANSWER_SECONDS, Call, ServiceSpec

if TYPE_CHECKING:  # langgraph loads only where the orchestrator runs
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from llmdocs.core.privacy import SubjectData


def _router() -> APIRouter:
    from llmdocs.services.orchestrator.api import router

    return router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The workflow runner: a checkpointer on the ecosystem's database, and the lease
    watch that resumes runs a dead replica left behind; what tool calls may carry."""
    from llmdocs.core.app import client_of
    from llmdocs.core.retention import periodically
    from llmdocs.services.docstore.client import DocStoreClient
    from llmdocs.services.gateway.client import GatewayClient
    from llmdocs.services.orchestrator.settings import OrchestratorSettings
    from llmdocs.services.orchestrator.workflows import (
        Runner,
        checkpoint_file,
        open_checkpointer,
    )
    from llmdocs.services.promptstore.client import PromptStoreClient

    settings = app.state.settings
    app.state.tool_settings = OrchestratorSettings()
    # the checkpoints hold runs' queries: scrubbed after an erasure too (core.scrub)
    app.state.sqlite_files = [p for p in [checkpoint_file(settings.database_url)] if p]
    async with open_checkpointer(settings.database_url,
                                 settings.data_ring) as checkpointer:
        runner = Runner(settings, app.state.resources, checkpointer,
                        gateway=client_of(app, GatewayClient),
                        prompts=client_of(app, PromptStoreClient),
                        docs=client_of(app, DocStoreClient))
        app.state.runner = runner
        await runner.start()
        try:
            async with (resuming_privacy_requests(app),
                        periodically("orchestrator-retention",
                                     settings.retention_interval_seconds,
                                     partial(forget_runs, app.state.resources.database,
                                             checkpointer,
                                             app.state.tool_settings.run_retention_days))):
                yield
        finally:
            await runner.close()


async def forget_runs(database: Database, checkpointer: BaseCheckpointSaver[Any],
                      days: float) -> dict[str, int]:
    """Delete finished runs older than their retention, with their checkpoints (the
    graph state, which holds the prompts and answers); 0 keeps them all."""
    from llmdocs.core.retention import cutoff, delete_batches
    from llmdocs.services.orchestrator.models import WorkflowRun
    from llmdocs.services.orchestrator.schemas import FINISHED

    if not days:
        return {}

    async def checkpoints(run_ids: list[Any]) -> None:
        for run_id in run_ids:  # a thread already gone is deleted again, harmlessly
            await checkpointer.adelete_thread(run_id)

    due = (WorkflowRun.finished_at < cutoff(days)) & WorkflowRun.status.in_(FINISHED)
    return {"runs": await delete_batches(database, WorkflowRun, WorkflowRun.id, due,
                                         removing=checkpoints)}


def _holds(app: FastAPI) -> SubjectData:
    from llmdocs.services.orchestrator.held import OrchestratorData

    return OrchestratorData(app.state.resources.database, app.state.runner)


@asynccontextmanager
async def resuming_privacy_requests(app: FastAPI) -> AsyncIterator[None]:
    """Privacy requests over every service that holds data about people (this one
    first, the log-collector last: it keeps the logs of the others' erasures), and the
    resumption of those a crash or an outage left unfinished, in the background."""
    import asyncio

    from llmdocs.core.privacy import PrivacyClient, subject_data
    from llmdocs.core.scrub import Scrubbing
    from llmdocs.services import all_specs
    from llmdocs.services.orchestrator.privacy import PrivacyRequests
    from llmdocs.services.orchestrator.settings import PrivacySettings

    others = sorted((s.key for s in all_specs() if s.privacy and s.key != spec.key),
                    key=lambda key: key == "logcollector")
    missing = [key for key in others if key not in app.state.clients]
    if missing:
        raise RuntimeError(f"the orchestrator's spec must call {missing}: they hold data "
                           "about people that privacy requests reach")
    holders: dict[str, SubjectData] = {
        spec.key: Scrubbing(app, subject_data(app)),
        **{key: PrivacyClient(app.state.clients[key]) for key in others}}
    resources = app.state.resources
    requests = PrivacyRequests(app.state.settings, resources.database, resources.events,
                               holders)
    app.state.privacy_settings = PrivacySettings()
    app.state.privacy_requests = requests
    resuming = asyncio.create_task(requests.keep_resuming(), name="privacy-resume")
    try:
        yield
    finally:
        resuming.cancel()
        await asyncio.gather(resuming, return_exceptions=True)


spec = ServiceSpec(
    key="orchestrator",
    name="orchestrator",
    title="Orchestrator",
    description="service registry, workflow definitions and runs (LangGraph), tool catalog.",
    scope="workflows",
    router=_router,
    calls=(Call("gateway", "llmdocs.services.gateway.client:GatewayClient",
                waits_up_to=MODEL_ANSWER_SECONDS),
           Call("promptstore", "llmdocs.services.promptstore.client:PromptStoreClient"),
           Call("docstore", "llmdocs.services.docstore.client:DocStoreClient"),
           # the others, for privacy requests
           Call("interpreter", "llmdocs.services.interpreter.client:InterpreterClient"),
           Call("logcollector", "llmdocs.services.logcollector.client:LogCollectorClient"),
           Call("notification", "llmdocs.services.notification.client:NotificationClient"),
           Call("analysis", "llmdocs.services.analysis.client:AnalysisClient"),
           Call("web", "llmdocs.services.web.client:WebClient")),
    lifespan=_lifespan,
    privacy=_holds,
    # not SMALL_REQUESTS: a registration carries a whole analysed spec (the discovery
    # bounds allow 500k schema nodes after inlining), the largest body it takes
    max_body_bytes=32 * 1024 * 1024,
)
