"""The services the main job needs, each on real HTTP on loopback and sharing one
database, and a stored OpenAPI spec of the example user service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from llmdocs.examples import user_service_spec
from llmdocs.runtime import up
from llmdocs.services import all_specs, create_app
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import FINISHED, WorkflowRunOut

NEEDED = ("gateway", "promptstore", "docstore", "orchestrator", "interpreter")
Embedded = tuple[Settings, asyncio.Event, "asyncio.Task[None]"]


@asynccontextmanager
async def embedded_up(settings: Settings) -> AsyncIterator[Embedded]:
    """`llmdocs up`: every service in this process on one SQLite database, each on a
    free port; with the event that stops them and the task serving them."""
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES})
    ready, stop = asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(up(eco, all_specs(), on_ready=ready.set, stop_when=stop))
    await asyncio.wait([running, asyncio.create_task(ready.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        running.result()
    try:
        yield eco, stop, running
    finally:
        stop.set()
        await asyncio.gather(running, return_exceptions=True)


async def start_services(settings: Settings, serve: Any) -> Settings:
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES}
                              | {"inprocess_calls": False})
    for key in NEEDED:
        await serve(create_app(key, eco), port=eco.port_for(key))
    return eco


def token(settings: Settings, *scopes: str) -> str:
    return issue_token(settings, "user:u1", list(scopes) or ["*"])


async def two_spaces(settings: Settings) -> None:
    """Spaces team-a (Alice, editor) and team-b (Bob, editor)."""
    async with DocStoreClient.for_service(settings, token=token(settings)) as docs:
        for space, member in (("team-a", "user:alice"), ("team-b", "user:bob")):
            await docs.create_space(space)
            await docs.grant(space, member, "editor")


async def store_spec(settings: Settings, dedupe: bool = True) -> str:
    """The example spec stored; `dedupe=False`: as a document of its own, not the one
    stored before with the same text."""
    async with DocStoreClient.for_service(settings, token=token(settings)) as docs:
        stored = await docs.put(user_service_spec(), title="User Service OpenAPI",
                                format="yaml", tags=["openapi"], dedupe=dedupe,
                                metadata={"service": "user-service"})
    return stored.document_id


async def resumed_once(settings: Settings, run_id: str, killed_at: datetime
                       ) -> WorkflowRunOut:
    """Wait for a run whose orchestrator was killed at `killed_at` and started again;
    check it completed on its second attempt without repeating the steps finished
    before the kill, and stored exactly one document."""
    async with OrchestratorClient.for_service(settings, token=token(settings)) as orch:
        done = await orch.run(run_id, wait=60)
        while done.status not in FINISHED:
            done = await orch.run(run_id, wait=60)
    async with DocStoreClient.for_service(settings, token=token(settings)) as docs:
        stored = await docs.list(**{"metadata.run_id": run_id})
    assert done.status == "completed" and done.attempts == 2, done.error
    names = [s.name for s in done.steps]
    for step in ("analyze", "gather_context", "outline"):  # not repeated after the crash
        assert names.count(step) == 1, names
    assert all(s.started_at < killed_at for s in done.steps[:3])  # kept from before it
    assert names.count("store") == 1 and names[-1] == "store"
    assert done.result is not None
    assert [d.document_id for d in stored.items] == [done.result["document_id"]]
    return done
