"""Workflow fixtures: the services the main job needs, each on real HTTP on loopback
and sharing one database, and a stored OpenAPI spec of the example user service."""

from __future__ import annotations

from typing import Any

import pytest

from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from llmdocs.examples import user_service_spec
from llmdocs.services import create_app
from llmdocs.services.docstore.client import DocStoreClient

NEEDED = ("gateway", "promptstore", "docstore", "orchestrator", "interpreter")


@pytest.fixture
async def eco(settings: Settings, serve: Any) -> Settings:
    """Settings of an ecosystem whose needed services all answer over HTTP."""
    return await start_services(settings, serve)


async def start_services(settings: Settings, serve: Any) -> Settings:
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES}
                              | {"inprocess_calls": False})
    for key in NEEDED:
        await serve(create_app(key, eco), port=eco.port_for(key))
    return eco


def token(settings: Settings, *scopes: str) -> str:
    return issue_token(settings, "user:u1", list(scopes) or ["*"])


async def store_spec(settings: Settings) -> str:
    async with DocStoreClient.for_service(settings, token=token(settings)) as docs:
        stored = await docs.put(user_service_spec(), title="User Service OpenAPI",
                                format="yaml", tags=["openapi"],
                                metadata={"service": "user-service"})
    return stored.document_id
