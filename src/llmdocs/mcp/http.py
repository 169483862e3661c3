"""The MCP server over streamable HTTP at the interpreter's `/mcp`: each request served
with the rights of the caller whose token the mount checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from mcp.server import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager

from llmdocs.core.auth import Principal
from llmdocs.mcp.backend import Backend
from llmdocs.mcp.mount import MCP_PATH, Endpoint, principal_of
from llmdocs.mcp.server import build


def caller(ctx: ServerRequestContext[Any]) -> Principal:
    return principal_of(ctx.request)


def endpoint(app: FastAPI) -> Endpoint:
    """/mcp: the llmdocs server, its clients delegating each caller's rights."""
    backend = Backend.open(app.state.settings)
    manager = StreamableHTTPSessionManager(app=build(backend, caller))

    @asynccontextmanager
    async def run() -> AsyncIterator[None]:
        try:
            async with manager.run():
                yield
        finally:
            await backend.aclose()

    return Endpoint(MCP_PATH, StreamableHTTPASGIApp(manager), run)
