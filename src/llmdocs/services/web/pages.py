"""What every page shares: the signed-in user and their clients, rendering, CSRF, the
security headers, and errors as readable pages (never a traceback)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import structlog
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException

from llmdocs.core.app import client_of
from llmdocs.core.auth import Principal, authenticating
from llmdocs.core.client import NotFound, ServiceClient, ServiceError, Unauthorized, acting_for
from llmdocs.core.config import Settings
from llmdocs.core.errors import DomainError, Problem
from llmdocs.services.web.errors import SignInNeeded
from llmdocs.services.web.sessions import Sessions

Client = TypeVar("Client", bound=ServiceClient)
log = structlog.get_logger(__name__)
HERE = Path(__file__).parent
SESSION_COOKIE = "llmdocs_session"
CSRF_COOKIE = "llmdocs_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# no inline script or style, nothing from elsewhere, no framing, forms post here only
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

# the header's links: (path, label); a page adds itself here (see WEB-API.md)
NAV: list[tuple[str, str]] = [
    ("/", "Search"),
    ("/ask", "Ask"),
    ("/runs", "Runs"),
    ("/services", "Services"),
    ("/prompts", "Prompts"),
    ("/usage", "Usage"),
    ("/trace", "Trace"),
]


def templates() -> Environment:
    """The page templates, escaping every value unless a template says it is safe."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"], default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["nav"] = NAV
    env.filters["when"] = when
    return env


def when(value: object) -> str:
    """A time as people read it, in UTC to the second, whether the service sent a datetime
    or an ISO string (provenance records hold strings, with `Z` or `+00:00`)."""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(moment, datetime):
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


class User:
    """The signed-in user of a request, and the services' clients as that user."""

    def __init__(self, request: Request, principal: Principal) -> None:
        self.request = request
        self.principal = principal

    @property
    def subject(self) -> str:
        return self.principal.subject

    def client(self, cls: type[Client]) -> Client:
        """The app's client to `cls.service`; a call made with it while the page runs
        carries this user's on-behalf-of token (see `as_user`), never the portal's."""
        return client_of(self.request.app, cls)


async def _signed_in(request: Request) -> Principal:
    """The session's user, or `SignInNeeded` (the page answers with the sign-in page)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None:
        return principal
    limiter = request.app.state.limiter
    limiter.check_address(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    sessions: Sessions = request.app.state.sessions
    principal = await sessions.principal(cookie) if cookie else None
    if principal is None:
        raise SignInNeeded
    request.state.principal = principal
    await limiter.admit(request, principal)  # a user's page views count as their calls
    return principal


async def _anyone(request: Request) -> None:
    """No one need be signed in (the sign-in page, static files); refusals still count."""
    request.app.state.limiter.check_address(request)


authenticating(_anyone)


async def as_user(request: Request,
                  principal: Principal = Depends(_signed_in)) -> AsyncIterator[User]:
    """A page's dependency: the signed-in user; calls to services made while the page
    runs carry the user's own on-behalf-of token (their subject, no more than their
    scopes), so every service judges the user, not the portal."""
    settings: Settings = request.app.state.settings
    with acting_for(settings, request.app.state.spec.key, principal):
        yield User(request, principal)


authenticating(as_user)
signed_in = Depends(as_user)
public = Depends(_anyone)


def _csrf_secret(request: Request) -> str:
    """The browser's CSRF cookie value, made on its first page."""
    value = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not value:
        value = request.state.new_csrf = secrets.token_urlsafe(32)
    return str(value)


def csrf_token(request: Request) -> str:
    """The token a form of this browser posts back (`csrf_token`, or the X-CSRF-Token
    header from htmx): an HMAC of its cookie, so another site can neither read nor make
    it."""
    key = request.app.state.settings.signing_key.encode()
    return hmac.new(key, f"csrf:{_csrf_secret(request)}".encode(),
                    hashlib.sha256).hexdigest()


async def _csrf_checked(request: Request) -> None:
    """A POST (any unsafe method) must carry this browser's CSRF token, else 403."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not request.cookies.get(CSRF_COOKIE) or not sent or not hmac.compare_digest(
            sent, csrf_token(request)):
        raise Problem(403, "This form has expired or did not come from this site: "
                      "reload the page and send it again.")


csrf_checked = Depends(_csrf_checked)


def render(request: Request, template: str, status: int = 200, **context: Any
           ) -> HTMLResponse:
    """The page `template` with `context`, the signed-in user and the CSRF token."""
    env: Environment = request.app.state.templates
    principal = getattr(request.state, "principal", None)
    html = env.get_template(template).render(
        request=request, user=principal, csrf_token=csrf_token(request),
        csrf_field=CSRF_FIELD, path=request.url.path, **context)
    return HTMLResponse(html, status_code=status)


def _secure(request: Request, response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if response.headers.get("content-type", "").startswith("text/html"):
        response.headers.setdefault("Cache-Control", "no-store")
    new = getattr(request.state, "new_csrf", None)
    if new:
        set_cookie(request, response, CSRF_COOKIE, new)
    return response


def set_cookie(request: Request, response: Response, name: str, value: str,
               max_age: int | None = None) -> None:
    """A cookie scripts cannot read, sent over HTTPS only when the portal is on HTTPS,
    and not on other sites' cross-site posts."""
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        secure=request.url.scheme == "https", samesite="lax")


def _message(exc: ServiceError) -> str:
    detail = exc.problem.get("detail") or exc.problem.get("title") or ""
    return str(detail) or f"The {exc.service} service answered {exc.status}."


def error_page(request: Request, exc: Exception) -> Response:
    """A readable page for what went wrong, with the status that says so."""
    headers: dict[str, str] = {}
    match exc:
        case Problem():
            status, detail, headers = exc.status, exc.detail, dict(exc.headers)
        case NotFound():  # of a space the user is not in, too: the same answer
            status, detail = 404, "There is nothing here, or it is not yours to see."
        case ServiceError() if exc.outage is not None:
            status, detail = exc.outage, (f"The {exc.service} service is not answering "
                                          "right now; try again in a moment.")
            headers["Retry-After"] = exc.retry_after or "5"
        case ServiceError():
            status, detail = (exc.status if 400 <= exc.status < 500 else 502), _message(exc)
        case DomainError():  # the portal's own refusals (SignInRefused): the user's to fix
            status, detail = 400, exc.detail
        case RequestValidationError():
            status, detail = 400, "; ".join(
                f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
        case HTTPException():
            status, detail = exc.status_code, str(exc.detail)
        case _:
            log.exception("page_failed", path=request.url.path)
            status, detail = 500, "Something went wrong on our side; it has been logged."
    response = render(request, "error.html", status=status, status_code=status,
                      detail=detail)
    response.headers.update({k: v for k, v in headers.items()
                             if k.lower() != "www-authenticate"})
    return response


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


class PageRoute(APIRoute):
    """A portal route: errors become pages, a signed-out visitor goes to sign in, an
    expired session too, every answer carries the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except (SignInNeeded, Unauthorized):
                response = sign_in_redirect(request)
            except Exception as exc:  # every failure is a page, never a traceback
                response = error_page(request, exc)
            return _secure(request, response)

        return page
