"""The llmdocs MCP server (the SDK's low-level `Server`): tools, document resources with
change notifications, and the prompt-store's production prompts, each request served
with its session user's rights; what the user may not see is 'not found'."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import mcp_types as types
import structlog
from anyio.abc import TaskGroup
from mcp.server import Server, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from llmdocs import __version__
from llmdocs.core.auth import Principal
from llmdocs.core.bodies import inline_schema
from llmdocs.core.client import Forbidden, NotFound, ServiceError
from llmdocs.mcp.backend import Backend
from llmdocs.mcp.tools import DOCUMENT_URI, TOOLS, Call, ToolDef, document_uri

RESOURCE_NOT_FOUND = -32002  # the MCP specification's code for an unknown resource
PRODUCTION = "production"
WATCH_SECONDS = 2.0  # how often a subscribed document's version is read
LISTED = 100  # documents and prompts listed per page
_URI = re.compile(r"^llmdocs://documents/([A-Za-z0-9-]{1,36})(?:/versions/([1-9][0-9]{0,8}))?$")
log = structlog.get_logger(__name__)
T = TypeVar("T")

# who calls: the principal an HTTP request carries, None for the stdio server's own token
CallerOf = Callable[[ServerRequestContext[Any]], Principal | None]


@dataclass
class Watches:
    """Subscribed documents per session, each read every `WATCH_SECONDS` with the
    subscriber's rights; a new version is a `notifications/resources/updated`."""

    tasks: TaskGroup
    scopes: dict[tuple[str, str], anyio.CancelScope] = field(default_factory=dict)

    def start(self, ctx: ServerRequestContext[Any], backend: Backend,
              principal: Principal | None, uri: str, document_id: str) -> None:
        key = (_session_key(ctx), uri)
        if key in self.scopes:
            return
        scope = self.scopes[key] = anyio.CancelScope()
        self.tasks.start_soon(self._watch, backend, ctx.session, principal, uri, document_id,
                              scope, key)

    def stop(self, ctx: ServerRequestContext[Any], uri: str) -> None:
        scope = self.scopes.pop((_session_key(ctx), uri), None)
        if scope is not None:
            scope.cancel()

    async def _watch(self, backend: Backend, session: ServerSession,
                     principal: Principal | None, uri: str, document_id: str,
                     scope: anyio.CancelScope, key: tuple[str, str]) -> None:
        with scope:
            try:
                seen = await _version(backend, principal, document_id)
                while True:
                    await anyio.sleep(WATCH_SECONDS)
                    now = await _version(backend, principal, document_id)
                    if now != seen:
                        seen = now
                        await session.send_resource_updated(uri)
            except (ServiceError, anyio.BrokenResourceError, anyio.ClosedResourceError,
                    MCPError) as ended:  # gone, token expired, or the session closed
                log.info("mcp watch ended", uri=uri, reason=str(ended))
            finally:
                self.scopes.pop(key, None)


def _session_key(ctx: ServerRequestContext[Any]) -> str:
    """The MCP session a request belongs to: its HTTP session id; stdio has one."""
    headers = getattr(ctx.request, "headers", None)
    return str(headers.get("mcp-session-id", "")) if headers is not None else "stdio"


async def _version(backend: Backend, principal: Principal | None, document_id: str) -> int:
    with backend.acting_for(principal):
        return (await backend.docs.get(document_id)).version


def _tool(tool: ToolDef) -> types.Tool:
    return types.Tool(
        name=tool.name, description=tool.description,
        # inlined: a client validates every result against it, and following `$ref`s
        # was most of what that cost
        input_schema=inline_schema(tool.takes),
        output_schema=inline_schema(tool.gives, "serialization"),
        annotations=types.ToolAnnotations(read_only_hint=tool.read_only,
                                          destructive_hint=False,
                                          open_world_hint=False))


def _failed(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                is_error=True)


def _why(exc: ServiceError) -> str:
    """A called service's refusal in words; a document the caller may not see, or that
    does not exist, is the same 'not found'."""
    if isinstance(exc, NotFound | Forbidden):
        return "Not found (or not yours to see)."
    if exc.outage is not None:
        wait = f" in {exc.retry_after} s" if exc.retry_after else ""
        return f"{exc.service} is unavailable: try again{wait}."
    return str(exc.problem.get("detail") or exc)


def build(backend: Backend, caller_of: CallerOf, name: str = "llmdocs") -> Server[Watches]:
    """The server; `caller_of` says whose rights a request is served with."""

    @asynccontextmanager
    async def lifespan(_: Server[Watches]) -> AsyncIterator[Watches]:
        async with anyio.create_task_group() as tasks:
            yield Watches(tasks)
            tasks.cancel_scope.cancel()

    listing = types.ListToolsResult(tools=[_tool(t) for t in TOOLS.values()])

    async def list_tools(ctx: ServerRequestContext[Watches],
                         _: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return listing

    async def call_tool(ctx: ServerRequestContext[Watches], params: types.CallToolRequestParams
                        ) -> types.CallToolResult:
        tool = TOOLS.get(params.name)
        if tool is None:
            raise MCPError(types.INVALID_PARAMS, f"no tool {params.name!r}: tools/list names them")
        try:
            args = tool.takes.model_validate(params.arguments or {})
        except ValidationError as exc:
            return _failed(f"Invalid arguments: {exc.errors(include_url=False)}")

        async def progress(done: float, message: str) -> None:
            await ctx.session.report_progress(done, None, message)

        try:
            with backend.acting_for(caller_of(ctx)):
                out = await tool.run(Call(backend, progress), args)
        except ServiceError as exc:
            return _failed(_why(exc))
        except (LookupError, ValueError, RuntimeError) as exc:
            return _failed(str(exc))
        data = out.model_dump(mode="json")
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(data))],
            structured_content=data)

    async def list_resources(ctx: ServerRequestContext[Watches],
                             params: types.PaginatedRequestParams | None
                             ) -> types.ListResourcesResult:
        cursor = params.cursor if params is not None else None
        with backend.acting_for(caller_of(ctx)):
            page = await _answered(backend.docs.list(limit=LISTED, cursor=cursor))
        return types.ListResourcesResult(next_cursor=page.next_cursor, resources=[
            types.Resource(uri=document_uri(d.document_id), name=d.document_id, title=d.title,
                           mime_type=d.media_type, size=d.size,
                           description=f"{d.format}, version {d.version}, space {d.space}")
            for d in page.items])

    async def list_templates(ctx: ServerRequestContext[Watches],
                             _: types.PaginatedRequestParams | None
                             ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[
            types.ResourceTemplate(uri_template=DOCUMENT_URI, name="document",
                                   description="A document's current version."),
            types.ResourceTemplate(uri_template=DOCUMENT_URI + "/versions/{n}",
                                   name="document-version",
                                   description="One version of a document.")])

    async def read_resource(ctx: ServerRequestContext[Watches],
                            params: types.ReadResourceRequestParams
                            ) -> types.ReadResourceResult:
        document_id, version = _parsed(params.uri)
        with backend.acting_for(caller_of(ctx)):
            doc = await _answered(backend.docs.get(document_id, version), params.uri)
            if doc.content is not None:
                return types.ReadResourceResult(contents=[types.TextResourceContents(
                    uri=params.uri, mime_type=doc.media_type, text=doc.content)])
            data, media_type, _ = await _answered(backend.docs.download(document_id, version),
                                                  params.uri)
        return types.ReadResourceResult(contents=[types.BlobResourceContents(
            uri=params.uri, mime_type=media_type or doc.media_type,
            blob=base64.b64encode(data).decode())])

    async def subscribe(ctx: ServerRequestContext[Watches], params: types.SubscribeRequestParams
                        ) -> types.EmptyResult:
        document_id, _ = _parsed(params.uri)
        principal = caller_of(ctx)
        with backend.acting_for(principal):  # a document not seen is not watched
            await _answered(backend.docs.get(document_id), params.uri)
        ctx.lifespan_context.start(ctx, backend, principal, params.uri, document_id)
        return types.EmptyResult()

    async def unsubscribe(ctx: ServerRequestContext[Watches],
                          params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        ctx.lifespan_context.stop(ctx, params.uri)
        return types.EmptyResult()

    async def list_prompts(ctx: ServerRequestContext[Watches],
                           _: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        found: list[types.Prompt] = []
        with backend.acting_for(caller_of(ctx)):
            page = await _answered(backend.prompts.list_prompts(limit=LISTED))
            for prompt in page.items:
                if PRODUCTION not in prompt.labels:
                    continue
                versions = await _answered(backend.prompts.history(prompt.id))
                chosen = next((v for v in versions
                               if v.version == prompt.labels[PRODUCTION]), None)
                if chosen is None:  # relabelled meanwhile: listed next time
                    continue
                found.append(types.Prompt(
                    name=prompt.name, description=prompt.description or None,
                    arguments=[types.PromptArgument(name=v.name,
                                                    description=v.description or None,
                                                    required=v.required)
                               for v in chosen.variables]))
        return types.ListPromptsResult(prompts=found)

    async def get_prompt(ctx: ServerRequestContext[Watches],
                         params: types.GetPromptRequestParams) -> types.GetPromptResult:
        with backend.acting_for(caller_of(ctx)):
            rendered = await _answered(backend.prompts.render_remote(
                params.name, dict(params.arguments or {}), label=PRODUCTION))
        messages = ([("user", rendered.text or "")] if rendered.messages is None else
                    [(m.role, m.content) for m in rendered.messages])
        return types.GetPromptResult(
            description=f"{rendered.name}, version {rendered.version} ({PRODUCTION})",
            messages=[types.PromptMessage(role="assistant" if role == "assistant" else "user",
                                          content=types.TextContent(type="text", text=text))
                      for role, text in messages])

    return Server(name, version=__version__, title="llmdocs",
                  instructions="Search and read llmdocs documents, their provenance and the "
                  "registered services; generate documentation from a request.",
                  lifespan=lifespan,
                  on_list_tools=list_tools, on_call_tool=call_tool,
                  on_list_resources=list_resources,
                  on_list_resource_templates=list_templates,
                  on_read_resource=read_resource, on_subscribe_resource=subscribe,
                  on_unsubscribe_resource=unsubscribe,
                  on_list_prompts=list_prompts, on_get_prompt=get_prompt)


def _parsed(uri: str) -> tuple[str, int | None]:
    match = _URI.match(uri)
    if match is None:
        raise MCPError(RESOURCE_NOT_FOUND, f"no such resource: {uri} (llmdocs://documents/"
                       "{id} or llmdocs://documents/{id}/versions/{n})")
    return match[1], int(match[2]) if match[2] else None


async def _answered(call: Awaitable[T], uri: str | None = None) -> T:
    """A call's answer; a refusal is the MCP error that says why."""
    try:
        return await call
    except ServiceError as exc:
        if uri is not None and isinstance(exc, NotFound | Forbidden):
            raise MCPError(RESOURCE_NOT_FOUND, f"no such resource: {uri}") from None
        code = types.INVALID_PARAMS if exc.outage is None else types.INTERNAL_ERROR
        raise MCPError(code, _why(exc)) from None
