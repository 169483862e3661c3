"""How MCP apps are served on the interpreter: each behind the kernel's token check, its
session manager running for the interpreter's life, its caller in the request's state."""

from __future__ import annotations

import pkgutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from llmdocs.core.auth import Principal, require
from llmdocs.core.config import Settings
from llmdocs.core.errors import Problem, problem_response

METADATA_PATH = "/.well-known/oauth-protected-resource"
MCP_PATH = "/mcp"


@dataclass(frozen=True)
class Endpoint:
    """An MCP app served on the interpreter."""

    path: str  # a Starlette path, in full: "/mcp", "/mcp/services/{name}"
    app: ASGIApp  # gets only authenticated requests
    run: Callable[[], AbstractAsyncContextManager[None]]  # its session manager's run


EndpointFactory = Callable[[FastAPI], Endpoint]

# "module:function" factories, imported when the interpreter starts
ENDPOINTS: tuple[str, ...] = (
    "llmdocs.mcp.http:endpoint",
    "llmdocs.mcp.services:endpoint",
)


class NoCaller(Exception):
    """An MCP request reached a handler without an authenticated caller."""


def principal_of(request: Any) -> Principal:
    """The caller of an MCP request over HTTP (`ctx.request`), as the mount checked it."""
    principal = getattr(getattr(request, "state", None), "principal", None)
    if not isinstance(principal, Principal):
        raise NoCaller("this MCP request carries no authenticated caller")
    return principal


def resource_metadata_url(request: Request, path: str) -> str:
    """Where RFC 9728's metadata of the protected resource at `path` is published."""
    return f"{str(request.base_url).rstrip('/')}{METADATA_PATH}{path}"


class Authenticated:
    """An app behind the kernel's token check; a refusal is a 401 problem whose challenge
    names the resource metadata when an identity provider signs users in."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.check = require()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            principal = await self.check(request, None)
        except Problem as refused:
            if refused.status == 401 and self.settings.oidc_issuer:
                url = resource_metadata_url(request, request.url.path)
                refused.headers = {**refused.headers, "WWW-Authenticate":
                                   f'Bearer realm="llmdocs", resource_metadata="{url}"'}
            await problem_response(request, refused)(scope, receive, send)
            return
        # the SDK binds a session to whoever opened it: another caller may not use it
        scope["user"] = AuthenticatedUser(AccessToken(
            token=str(principal.claims.get("jti", "")),
            client_id=principal.actor or principal.subject,
            scopes=sorted(principal.scopes), subject=principal.subject,
            claims={"iss": principal.claims.get("iss")}))
        await self.app(scope, receive, send)


def _metadata_route(settings: Settings) -> Route:
    """RFC 9728 protected-resource metadata of each MCP endpoint under /mcp (public)."""
    async def metadata(request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({
            "resource": f"{base}{MCP_PATH}{request.path_params['rest']}",
            "authorization_servers": [settings.oidc_issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": "llmdocs",
        })

    return Route(f"{METADATA_PATH}{MCP_PATH}{{rest:path}}", metadata, methods=["GET"])


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[None]:
    """Serve every MCP endpoint on the interpreter's `app` while inside."""
    settings: Settings = app.state.settings
    routes: list[Route] = []
    async with AsyncExitStack() as stack:
        for name in ENDPOINTS:
            factory: EndpointFactory = pkgutil.resolve_name(name)
            endpoint = factory(app)
            await stack.enter_async_context(endpoint.run())
            routes.append(Route(endpoint.path, Authenticated(endpoint.app, settings),
                                methods=["GET", "POST", "DELETE"]))
        if settings.oidc_issuer:
            routes.append(_metadata_route(settings))
        app.router.routes.extend(routes)
        try:
            yield
        finally:
            for route in routes:
                app.router.routes.remove(route)
