"""Every registered service as an MCP server of its own at `/mcp/services/{name}`: the
operations its registry allow-list permits, as tools, each called through the
orchestrator's tool API for the session's caller (never with a service token to a third
party), its arguments checked against the operation's schema before any call and its
answer cut at a size an agent's context can take."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import mcp.types as types
from fastapi import FastAPI
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp

from llmdocs.core.app import client_of
from llmdocs.core.auth import Principal
from llmdocs.core.client import NotFound, ServiceError, acting_for
from llmdocs.core.config import Settings
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.errors import Invalid
from llmdocs.services.orchestrator.schemas import ToolResult
from llmdocs.services.orchestrator.tools import (
    ToolSpec,
    check_arguments,
    mcp_descriptor,
    tool_specs,
)

PATH = "/mcp/services/{name}"
ACTOR = "interpreter"  # the service the endpoint runs in, named in on-behalf-of tokens
SETTING = "LLMDOCS_MCP_SERVICE_TOOL_MAX_BYTES"


class ServiceToolSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMDOCS_MCP_", env_file=".env",
                                      extra="ignore")

    # a tool's answer (its HTTP status and body as JSON) past this is cut, with a note
    service_tool_max_bytes: int = Field(64_000, ge=256)


@dataclass(frozen=True)
class Endpoint:
    """What `llmdocs.mcp.mount` serves: a path, its app and its session manager's run."""

    path: str
    app: ASGIApp
    run: Callable[[], AbstractAsyncContextManager[None]]


def _caller(ctx: ServerRequestContext[Any]) -> tuple[Principal, str]:
    """The session's caller, as the mount authenticated it, and the service in its URL."""
    request = ctx.request
    principal = getattr(getattr(request, "state", None), "principal", None)
    if not isinstance(principal, Principal) or request is None:
        raise MCPError(types.INVALID_REQUEST, "This endpoint needs an authenticated caller.")
    return principal, str(request.path_params["name"])


def _problem(exc: ServiceError) -> str:
    detail = exc.problem.get("detail") if isinstance(exc.problem, dict) else None
    return str(detail or exc)


def _failed(text: str, errors: list[dict[str, Any]] | None = None) -> types.CallToolResult:
    """A tool error the model can read and correct, rather than a protocol error."""
    body = text if not errors else f"{text}\n{json.dumps(errors, ensure_ascii=False)}"
    return types.CallToolResult(content=[types.TextContent(type="text", text=body)],
                                is_error=True)


class ServiceTools:
    """The MCP server behind `/mcp/services/{name}`; stateless, so any interpreter
    replica answers any request."""

    def __init__(self, settings: Settings, orchestrator: OrchestratorClient,
                 limits: ServiceToolSettings) -> None:
        self.settings = settings
        self.orchestrator = orchestrator
        self.max_bytes = limits.service_tool_max_bytes
        self.server: Server[Any] = Server(
            "llmdocs-services", version="1",
            instructions="A registered service's allowed operations, as tools; each call "
                         "is a real HTTP request made with your rights.",
            on_list_tools=self.list_tools, on_call_tool=self.call_tool)
        self.manager = StreamableHTTPSessionManager(app=self.server, stateless=True,
                                                    json_response=True)

    async def specs(self, principal: Principal, service: str) -> list[ToolSpec]:
        """The service's operations its allow-list permits, seen with the caller's rights."""
        with acting_for(self.settings, ACTOR, principal):
            try:
                detail = await self.orchestrator.get_service(service)
            except NotFound:
                raise MCPError(types.INVALID_PARAMS,
                               f"No service named {service!r} is registered.") from None
            except ServiceError as exc:
                raise MCPError(types.INTERNAL_ERROR, f"The registry did not answer: "
                               f"{_problem(exc)}") from None
        allowed = set(detail.tool_operations)
        return [spec for spec in tool_specs([detail])
                if spec.operation.operation_id in allowed]

    async def list_tools(self, ctx: ServerRequestContext[Any],
                         params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        specs = await self.specs(*_caller(ctx))
        return types.ListToolsResult(tools=[types.Tool.model_validate(mcp_descriptor(spec))
                                            for spec in specs])

    async def call_tool(self, ctx: ServerRequestContext[Any],
                        params: types.CallToolRequestParams) -> types.CallToolResult:
        principal, service = _caller(ctx)
        spec = next((s for s in await self.specs(principal, service)
                     if s.name == params.name), None)
        if spec is None:  # absent, or not on the allow-list: the same to the caller
            raise MCPError(types.INVALID_PARAMS, f"{service} has no tool {params.name!r}; "
                           "tools/list names the operations its registration allows.")
        arguments = params.arguments or {}
        try:
            check_arguments(spec, arguments)
        except Invalid as exc:  # the service is not called
            return _failed(exc.detail, exc.errors)
        with acting_for(self.settings, ACTOR, principal):
            try:
                result = await self.orchestrator.call_tool(spec.name, arguments, service)
            except ServiceError as exc:
                return _failed(f"Tool {spec.name} was not called: {_problem(exc)}")
        return self.answer(result)

    def answer(self, result: ToolResult) -> types.CallToolResult:
        """The service's status and body; past the size cap, cut to it with a note."""
        answer = {"status": result.status, "body": result.body}
        text = json.dumps(answer, ensure_ascii=False)
        raw = text.encode()
        failed = result.status >= 400
        if len(raw) <= self.max_bytes:
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                        structured_content=answer, is_error=failed)
        note = (f"[truncated: the answer is {len(raw)} bytes, the first {self.max_bytes} "
                f"are shown ({SETTING}); ask for less, e.g. with a narrower query]")
        cut = raw[:self.max_bytes].decode(errors="ignore")
        return types.CallToolResult(content=[types.TextContent(type="text", text=cut),
                                             types.TextContent(type="text", text=note)],
                                    is_error=failed)


def endpoint(app: FastAPI) -> Endpoint:
    """The factory `llmdocs.mcp.mount` calls with the interpreter's app once its clients
    are ready (a new session manager each time: one runs only once)."""
    tools = ServiceTools(app.state.settings, client_of(app, OrchestratorClient),
                         ServiceToolSettings())
    return Endpoint(PATH, tools.manager.handle_request, tools.manager.run)
