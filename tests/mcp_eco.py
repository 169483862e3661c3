"""An ecosystem for the MCP tests over real HTTP (the real local model behind the
gateway), spaces team-a (Alice) and team-b (Bob), and MCP sessions over both transports."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.session import MessageHandlerFnT
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from ecosystem import start_services, two_spaces
from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.examples import user_service_spec
from llmdocs.services import create_app

SECRET = "Zebrafinch"  # in Bob's document only
USER_SCOPES = ["queries:read", "queries:write", "docs:read", "docs:write", "workflows:read",
               "workflows:write", "analysis:read", "analysis:write", "prompts:read"]
SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Eco:
    settings: Settings
    alice_doc: str  # Alice's spec, in team-a
    bob_doc: str  # Bob's, in team-b: Alice may not see it

    def token(self, subject: str, *scopes: str) -> str:
        return issue_token(self.settings, subject, USER_SCOPES + list(scopes))

    @property
    def mcp_url(self) -> str:
        return self.settings.url_for("interpreter") + "/mcp"


def http(settings: Settings, service: str, bearer: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=settings.url_for(service), timeout=60,
                             headers={"Authorization": f"Bearer {bearer}"})


async def mcp_ecosystem(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch
                        ) -> Eco:
    """The main job's services and analysis, two spaces, a spec stored in each."""
    monkeypatch.setenv("LLMDOCS_ANALYSIS_REGENERATE", "false")
    monkeypatch.setenv("LLMDOCS_SPACES_CACHE_SECONDS", "0")
    # few tokens per model call keep the CPU model quick; the workflow is unchanged
    for name, value in {"LLMDOCS_WORKFLOW_PROSE_TOKENS": "16",
                        "LLMDOCS_WORKFLOW_REVIEW_TOKENS": "16",
                        "LLMDOCS_INTERPRETER_MODEL_TOKENS": "24"}.items():
        monkeypatch.setenv(name, value)
    running = await start_services(settings, serve)
    await serve(create_app("analysis", running), port=running.port_for("analysis"))
    await two_spaces(running)
    ids = {}
    for who, space, text in (("alice", "team-a", user_service_spec()),
                             ("bob", "team-b", user_service_spec().replace(
                                 "title: User Service", f"title: {SECRET} Service"))):
        async with http(running, "docstore", issue_token(running, f"user:{who}",
                                                         USER_SCOPES)) as docs:
            stored = await docs.post("/documents", json={
                "content": text, "title": f"{who} user service OpenAPI", "format": "yaml",
                "tags": ["openapi"], "metadata": {"service": "user-service"},
                "space": space})
            assert stored.status_code == 201, stored.text
            ids[who] = stored.json()["document_id"]
    return Eco(running, ids["alice"], ids["bob"])


@asynccontextmanager
async def over_http(eco: Eco, subject: str, handler: MessageHandlerFnT | None = None,
                    url: str | None = None) -> AsyncIterator[ClientSession]:
    """An initialised MCP session with the interpreter's /mcp (or `url`) as `subject`."""
    headers = {"Authorization": f"Bearer {eco.token(subject)}"}
    async with (httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(600)) as client,
                streamable_http_client(url or eco.mcp_url, http_client=client) as (read, write),
                ClientSession(read, write, message_handler=handler) as session):
        await session.initialize()
        yield session


@asynccontextmanager
async def over_stdio(eco: Eco, subject: str, token: str | None = None,
                     errlog: TextIO = sys.stderr) -> AsyncIterator[ClientSession]:
    """An initialised MCP session with `python -m llmdocs mcp` as `subject` (or with
    `token`)."""
    env = {f"LLMDOCS_{key.upper()}_PORT": str(eco.settings.port_for(key))
           for key in SERVICE_NAMES}
    env |= {"LLMDOCS_TOKEN": token or eco.token(subject), "PYTHONPATH": os.pathsep.join(
        [str(SRC), os.environ.get("PYTHONPATH", "")]),
        "LLMDOCS_DATA_DIR": str(eco.settings.data_dir)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "llmdocs", "mcp"],
                                   env=env, cwd=str(eco.settings.data_dir.parent))
    async with (stdio_client(params, errlog) as (read, write),
                ClientSession(read, write) as session):
        await session.initialize()
        yield session
