"""The portal's routes: signing in and out, static files, and every page's router; a
path no page has is a 404 page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from llmdocs.core.errors import Problem
from llmdocs.services.web import (
    ask,
    documents,
    oidc,
    prompts,
    registry,
    runs,
    search,
    trace,
    usage,
)
from llmdocs.services.web.errors import SignInRefused
from llmdocs.services.web.pages import (
    HERE,
    SESSION_COOKIE,
    PageRoute,
    csrf_checked,
    public,
    render,
    set_cookie,
)
from llmdocs.services.web.sessions import Sessions

STATIC = (HERE / "static").resolve()
OIDC_COOKIE = "llmdocs_oidc"  # a sign-in under way at the identity provider
STATIC_MAX_AGE = 3600

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _local(target: str | None) -> str:
    """Where to go after signing in: a path of this site only, never another site."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _signed_in_as(request: Request, cookie: str, target: str | None) -> Response:
    response = RedirectResponse(_local(target), status_code=303)
    hours = request.app.state.web_settings.session_hours
    set_cookie(request, response, SESSION_COOKIE, cookie, max_age=int(hours * 3600))
    return response


@router.get("/login", dependencies=[public])
async def login(request: Request, token: str | None = Query(None, max_length=8192),
                next: str | None = Query(None, max_length=2000)) -> Response:
    """The sign-in page; with `token`, a one-time link `llmdocs up` printed signs in."""
    if token is None:
        return render(request, "login.html", next=_local(next),
                      oidc=bool(request.app.state.settings.oidc_issuer))
    sessions: Sessions = request.app.state.sessions
    return _signed_in_as(request, await sessions.redeem_link(token), next)


@router.post("/login", dependencies=[public, csrf_checked])
async def login_with_token(request: Request,
                           access_token: Annotated[str, Form(max_length=16384)],
                           next: Annotated[str | None, Form(max_length=2000)] = None
                           ) -> Response:
    """Sign in with an access token pasted once (`llmdocs token`, or the provider's)."""
    sessions: Sessions = request.app.state.sessions
    return _signed_in_as(request, await sessions.redeem_token(access_token), next)


@router.get("/login/oidc", dependencies=[public])
async def login_oidc(request: Request, next: str | None = Query(None, max_length=2000)
                     ) -> Response:
    """Sign in at the identity provider (authorization code with PKCE)."""
    settings = request.app.state.settings
    if not settings.oidc_issuer:
        raise Problem(404, "No identity provider is configured (LLMDOCS_OIDC_ISSUER).")
    target, flow = await oidc.begin(settings, request.app.state.web_settings, _local(next))
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, OIDC_COOKIE, oidc.seal(settings, flow),
               max_age=oidc.FLOW_SECONDS)
    return response


@router.get("/login/callback", dependencies=[public])
async def login_callback(request: Request, state: str = Query(max_length=200),
                         code: str | None = Query(None, max_length=2000),
                         error: str | None = Query(None, max_length=200)) -> Response:
    """The identity provider's answer: a code for a session, or why not."""
    settings = request.app.state.settings
    flow = oidc.unseal(settings, request.cookies.get(OIDC_COOKIE), state)
    if code is None:
        raise SignInRefused(f"The identity provider did not sign you in ({error or 'no code'}).")
    token = await oidc.finish(settings, request.app.state.web_settings, code, flow)
    sessions: Sessions = request.app.state.sessions
    response = _signed_in_as(request, await sessions.redeem_token(token), flow.next)
    response.delete_cookie(OIDC_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.post("/logout", dependencies=[public, csrf_checked])
async def logout(request: Request) -> Response:
    """Sign out: the session ends on the server, the cookie is dropped."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        sessions: Sessions = request.app.state.sessions
        await sessions.end(cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/static/{name:path}", dependencies=[public])
async def static(name: str) -> Response:
    """The portal's own CSS, scripts and images, from the package."""
    path = (STATIC / name).resolve()
    if not path.is_file() or not path.is_relative_to(STATIC):
        raise Problem(404, f"There is no file {name!r} here.")
    return FileResponse(path, headers={"Cache-Control": f"public, max-age={STATIC_MAX_AGE}"})


# every page's module (its `router`), in the order their paths are matched
PAGES = (search, documents, ask, runs, registry, prompts, usage, trace)
for _page in PAGES:  # their routes themselves: the kernel sees each one's sign-in check
    router.routes.extend(_page.router.routes)


@router.api_route("/{missing:path}", methods=["GET", "POST"], dependencies=[public])
async def not_found(missing: str) -> Response:
    """Any other path: a readable 404 page."""
    raise Problem(404, f"There is no page /{missing}.")
