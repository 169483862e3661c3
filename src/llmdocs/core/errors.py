"""RFC 9457 problem details: the one error format of every service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, TypeVar

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from redis import exceptions as redis_errors
from sqlalchemy import exc as sql_errors
from starlette.exceptions import HTTPException as StarletteHTTPException

from llmdocs.core import crypto

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:llmdocs:problem:"
RETRY_AFTER_SECONDS = 5  # what a 503 or 504 asks a client to wait: a restart's order

log = structlog.get_logger(__name__)


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type: str | None = None,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type or _type_for(status)
        self.errors = list(errors) if errors else None
        self.headers = headers or {}


class DomainError(Exception):
    """A refusal raised by domain code, which knows no HTTP; `errors` name the fields
    at fault. The service's api.py says which status each kind is (`domain_problems`)."""

    def __init__(self, detail: str, errors: Sequence[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None


E = TypeVar("E", bound=DomainError)
T = TypeVar("T")


def domain_problems(statuses: Mapping[type[E], int]) -> Callable[[], AsyncIterator[None]]:
    """A router dependency that says every route's domain errors as problems, each
    with the status of its kind: the one place a service maps them. (Async: a
    generator dependency would otherwise take a worker thread per request.)"""
    status_of: dict[type[DomainError], int] = dict(statuses.items())

    async def problems() -> AsyncIterator[None]:
        try:
            yield
        except DomainError as exc:
            # the nearest kind in the table: a subclass added later maps as its parent
            status = next((status_of[kind] for kind in type(exc).__mro__
                           if kind in status_of), None)
            if status is None:
                raise
            raise Problem(status, exc.detail, errors=exc.errors) from None

    return problems


def unavailable(detail: str, status: int = 503) -> Problem:
    """A dependency's outage (503) or timeout (504): the caller's request was fine, and
    the same request again later may well succeed, so the answer says when."""
    return Problem(status, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


OUTAGES: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError, redis_errors.TimeoutError, ConnectionError, TimeoutError,
    sql_errors.DBAPIError, sql_errors.TimeoutError, psycopg.OperationalError,
    psycopg.InterfaceError)
# SQLSTATE classes of a server going away: a connection exception (08), or the
# operator's intervention (57P: shutting down, "not yet accepting connections" while
# it recovers from a crash), which asyncpg's errors carry as no DBAPI class says
GONE = ("08", "57P")


def outage_status(exc: BaseException) -> int | None:
    """503 when `exc` says the database or Redis could not be reached (refused, dropped,
    restarting, its pool exhausted), 504 when it timed out, or the `outage` a called
    service's error says (core.client); None for any other error."""
    said = getattr(exc, "outage", None)
    if isinstance(said, int):
        return said
    if isinstance(exc, redis_errors.TimeoutError | TimeoutError):
        return 504
    if isinstance(exc, redis_errors.ConnectionError | ConnectionError
                  | sql_errors.OperationalError | sql_errors.InterfaceError
                  | sql_errors.TimeoutError):
        return 503
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):  # checkpoints
        return 503
    if isinstance(exc, sql_errors.DBAPIError) and (
            exc.connection_invalidated
            or (getattr(exc.orig, "sqlstate", None) or "").startswith(GONE)):
        return 503
    return None


OUTAGE_PAUSES = (0.2, 5.0)  # the first and the longest wait between calls in an outage


async def outlasting(call: Callable[[], Awaitable[T]], seconds: float, what: str) -> T:
    """`call`'s result, called again while it fails with a dependency's outage (see
    `outage_status`; a limit's 429 is no outage a wait of seconds ends) for up to
    `seconds`: a restart passes unnoticed, a longer outage raises its error."""
    loop = asyncio.get_running_loop()
    give_up, pause = loop.time() + seconds, OUTAGE_PAUSES[0]
    while True:
        try:
            return await call()
        except Exception as exc:
            if outage_status(exc) is None or getattr(exc, "status", None) == 429 \
                    or loop.time() + pause > give_up:
                raise
            log.warning("waiting out an outage", what=what, error=str(exc)[:300])
        await asyncio.sleep(pause)
        pause = min(pause * 2, OUTAGE_PAUSES[1])


def _type_for(status: int) -> str:
    try:
        return PROBLEM_BASE + HTTPStatus(status).phrase.lower().replace(" ", "-")
    except ValueError:
        return "about:blank"


def problem_body(problem: Problem) -> dict[str, Any]:
    """The problem document, but for what the request it answers adds (`instance`)."""
    body: dict[str, Any] = {"type": problem.type, "title": problem.title,
                            "status": problem.status, "detail": problem.detail}
    if problem.errors:
        body["errors"] = problem.errors
    return body


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    body = {**problem_body(problem), "instance": request.url.path}
    correlation_id = getattr(request.state, "correlation_id", None)
    if correlation_id:
        body["correlation_id"] = correlation_id
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON,
                        headers=problem.headers)


def invalid_request(exc: ValidationError, where: str = "body") -> RequestValidationError:
    """A pydantic error in a part of the request (`where`: body, query, a form field)
    as the usual 422, for a handler that validates that part itself."""
    return RequestValidationError([{"loc": (where, *err["loc"]), "msg": err["msg"],
                                    "type": err["type"]} for err in exc.errors()])


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join(str(part) for part in err.get("loc", ())),
            "message": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]


def _reasons(errors: list[dict[str, Any]], shown: int = 3, width: int = 160) -> str:
    """The first few errors in one line, each cut short: a client that prints only the
    detail still tells its user why, and a huge value sent is not echoed back whole."""
    parts = []
    for error in errors[:shown]:
        message = str(error["message"]).removeprefix("Value error, ")
        if len(message) > width:
            message = message[:width] + "…"
        parts.append(f"{error['field']}: {message}")
    more = len(errors) - shown
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


# why FastAPI could not read a body, which its 400 ("There was an error parsing the
# body") leaves unsaid
_UNREADABLE: dict[type[object], str] = {
    UnicodeDecodeError: "The body is not valid UTF-8.",
    RecursionError: "The body's JSON is nested too deeply to read.",
}


_NOT_AN_OBJECT = ("model_attributes_type", "dict_type")


async def unhandled(request: Request, exc: Exception) -> JSONResponse:
    """An error no route handled: a dependency's outage (503 or 504, see
    `outage_status`), or a crash (500, logged)."""
    status = outage_status(exc)
    if status is not None:  # a dependency's failure, not ours: a retry may succeed
        log.warning("dependency_unavailable", path=request.url.path,
                    error=f"{type(exc).__name__}: {exc}"[:500])
        what = "did not answer in time" if status == 504 else "cannot be reached"
        return problem_response(request, unavailable(
            f"A service or store this service needs {what}; retry in "
            f"{RETRY_AFTER_SECONDS} s.", status))
    log.exception("unhandled_error", path=request.url.path)
    return problem_response(
        request, Problem(500, "An internal error occurred; it has been logged.")
    )


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(request, exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        detail = _UNREADABLE.get(type(exc.__cause__), detail)  # FastAPI's "error parsing"
        return problem_response(
            request, Problem(exc.status_code, detail, headers=dict(exc.headers or {}))
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _field_errors(exc)
        sent = request.headers.get("content-type", "")
        if "json" not in sent and any(e["field"] == "body" and e["type"] in _NOT_AN_OBJECT
                                      for e in errors):  # FastAPI reads JSON bodies only
            return problem_response(request, Problem(
                415, f"Send the body as JSON (Content-Type: application/json), not "
                     f"{sent.split(';')[0] or 'without a Content-Type'}."))
        return problem_response(
            request,
            Problem(422, f"The request is not valid: {_reasons(errors)}.",
                    title="Validation failed", errors=errors),
        )

    async def on_sealed(request: Request, exc: Exception) -> JSONResponse:
        """A stored record this service cannot decrypt (its key left the ring, or it
        was altered): the operator's to fix, so unavailable, never garbage."""
        log.error("record_not_decryptable", path=request.url.path, error=str(exc))
        return problem_response(request, unavailable(f"A stored record cannot be read: {exc}"))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(crypto.CryptoError, on_sealed)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    for outage in OUTAGES:  # answered here, not re-raised to the server as a crash is
        app.add_exception_handler(outage, unhandled)
    app.add_exception_handler(Exception, unhandled)
