"""`llmdocs mcp`: the MCP server on stdin/stdout for desktop agents, calling the
running llmdocs with the user's token (LLMDOCS_TOKEN, or one signed here)."""

from __future__ import annotations

import getpass
from typing import Any

import anyio
from mcp.server import ServerRequestContext
from mcp.server.stdio import stdio_server

from llmdocs.cli_support import cli_settings, require_signing_key
from llmdocs.core.auth import Principal, issue_token
from llmdocs.core.client import Forbidden, Unauthorized
from llmdocs.core.config import Settings
from llmdocs.core.logging import configure_logging
from llmdocs.mcp.backend import Backend
from llmdocs.mcp.server import build

LOCAL_TOKEN_SECONDS = 24 * 3600  # a desktop agent's session lasts a working day


def _own_token(_: ServerRequestContext[Any]) -> Principal | None:
    return None  # every call carries the token the server was started with


def local_token(settings: Settings) -> str:
    """LLMDOCS_TOKEN; else one for the local user, signed with the instance's key."""
    if settings.token is not None:
        return settings.token.get_secret_value()
    require_signing_key(settings)
    return issue_token(settings, f"user:{getpass.getuser()}", ["*"],
                       ttl_seconds=LOCAL_TOKEN_SECONDS)


async def serve(settings: Settings, token: str) -> None:
    backend = Backend.open(settings, token=token)
    server = build(backend, _own_token)
    try:
        try:  # a refused token ends the server at once, saying why, not at each call
            await backend.docs.my_spaces()
        except (Unauthorized, Forbidden) as refused:
            raise SystemExit(f"llmdocs mcp: the token is refused: {refused}") from None
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        await backend.aclose()


def mcp() -> None:
    """Serve llmdocs to an agent over MCP on stdin/stdout (Claude Code, Cursor, VS Code)."""
    settings = cli_settings()
    configure_logging(settings.log_level, "json")  # to stderr: stdout carries MCP
    anyio.run(serve, settings, local_token(settings))
