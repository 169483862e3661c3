"""HTTP routes of the interpreter. Routes parse, call service.py and shape the answer."""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sse_starlette.sse import EventSourceResponse

from llmdocs.core.auth import Principal, require
from llmdocs.core.client import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ServiceError,
    ServiceUnavailable,
    Unprocessable,
    UpstreamError,
)
from llmdocs.core.errors import Problem, domain_problems, unavailable
from llmdocs.core.filenames import shown_as_is
from llmdocs.core.idempotency import (
    Answer,
    IdempotencyKeyHeader,
    answered,
    problem_answer,
)
from llmdocs.core.spaces import Spaces, SpaceView
from llmdocs.services.interpreter.errors import (
    CannotRun,
    NoSuch,
    NotAllowed,
    NothingToCancel,
    Refused,
)
from llmdocs.services.interpreter.schemas import (
    ExecutionOut,
    InterpretOut,
    QueryIn,
    RefreshIn,
)
from llmdocs.services.interpreter.service import Interpreter
from llmdocs.services.orchestrator.schemas import FINISHED

read = require("queries:read")
write = require("queries:write")
READ = [Depends(read)]
MAX_WAIT = 300.0  # the longest a refresh's caller may ask to wait (as for a run's start)
Id = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]


async def interpreter(request: Request) -> Interpreter:
    return request.app.state.interpreter  # type: ignore[no-any-return]


def _problem(exc: ServiceError) -> Problem:
    """Another service's refusal, said as ours: what it refused in the request's input
    is the request's fault (422), a refusal or a limit is passed on as it is; a service
    down, failing or too slow is 503 or 504 with Retry-After (a retry may succeed)."""
    detail = str(exc.problem.get("detail") or exc)
    if isinstance(exc, ServiceUnavailable | UpstreamError):
        problem = unavailable(f"{exc.service} is unavailable: {detail}",
                              504 if exc.status == 504 else 503)
        if exc.retry_after:
            problem.headers["Retry-After"] = exc.retry_after
        return problem
    if isinstance(exc, NotFound):
        return Problem(404, detail)
    if isinstance(exc, Conflict):
        return Problem(409, detail)
    if isinstance(exc, BadRequest | Unprocessable):
        return Problem(422, detail, errors=exc.problem.get("errors"))
    if isinstance(exc, Forbidden):
        return Problem(403, detail)
    if isinstance(exc, RateLimited):
        return Problem(429, detail, headers={"Retry-After": exc.retry_after}
                       if exc.retry_after else None)
    return Problem(502, f"{exc.service} failed: {detail}")


# a failed run's answer by why it failed: its request (or a run recorded before the
# failure was) is the caller's to change, a dependency's outage is worth a retry
FAILED = {"request": 422, None: 422, "unavailable": 503, "timeout": 504, "internal": 502}


def _failed(execution: ExecutionOut) -> Problem:
    """The answer to a run that ended without its document."""
    errors = [{"field": "query", "message": execution.error or "",
               "execution_id": execution.execution_id}]
    if execution.status == "cancelled":
        return Problem(409, "The request could not be carried out: execution "
                       f"{execution.execution_id} was cancelled before it finished",
                       errors=errors)
    status = FAILED[execution.failure]
    if status == 422:
        return Problem(422, f"The request could not be carried out: {execution.error}",
                       errors=errors)
    if status == 502:
        return Problem(502, f"The run failed: {execution.error}", errors=errors)
    problem = unavailable(f"A service the run needs was unavailable; retry later: "
                          f"{execution.error}", status)
    problem.errors = errors
    return problem


STATUS: dict[type[Refused], int] = {CannotRun: 422, NotAllowed: 403, NoSuch: 404,
                                    NothingToCancel: 409}


router = APIRouter(tags=["interpreter"], dependencies=[Depends(domain_problems(STATUS))])


@contextmanager
def _upstream() -> Iterator[None]:
    try:
        yield
    except ServiceError as exc:
        raise _problem(exc) from None


@router.post("/interpret", summary="The intent, entities and workflow of a request, "
             "without running it")
async def interpret(body: QueryIn, caller: Principal = Depends(read),
                    svc: Interpreter = Depends(interpreter)) -> InterpretOut:
    with _upstream():
        return await svc.preview(body, caller)


@router.post("/execute-query", response_model=ExecutionOut,
             summary="Run a request: 200 with the document, or 202 (with `async: true`, "
             "or when the run outlasts the wait) with its execution's Location")
async def execute_query(body: QueryIn, request: Request, spaces: Spaces,
                        caller: Principal = Depends(write),
                        svc: Interpreter = Depends(interpreter),
                        key: str | None = IdempotencyKeyHeader) -> Response:
    return answered(request, await _once(svc, caller, spaces, key, body.model_dump_json(),
                                         lambda: _execute(body, caller, spaces, svc, key)))


async def _once(svc: Interpreter, caller: Principal, view: SpaceView, key: str | None,
                canonical: str, carry_out: Callable[[], Awaitable[Answer]]) -> Answer:
    """The keyed request's answer; a kept 202 whose run has since failed for an outage
    no longer holds (its retry could never get the document): the key runs afresh, and
    the new run follows the failed one (the interpreter's `_start`)."""
    carried_out = False

    async def fresh() -> Answer:
        nonlocal carried_out
        carried_out = True
        return await carry_out()

    answer = await svc.keys.once(caller.subject, key, canonical, fresh)
    if key is None or carried_out or answer.status != 202:  # only a replay can be stale
        return answer
    try:
        execution = await svc.execution(answer.body["execution_id"], caller, view)
    except Exception:  # an outage: the kept answer stands, a retry will look again
        return answer
    if execution.status != "failed" or FAILED[execution.failure] < 503:
        return answer
    await svc.keys.forget(caller.subject, key)
    return await svc.keys.once(caller.subject, key, canonical, carry_out)


async def _execute(body: QueryIn, caller: Principal, view: SpaceView, svc: Interpreter,
                   key: str | None) -> Answer:
    return await _started(lambda: svc.execute(body, caller, view, key))


async def _started(start: Callable[[], Awaitable[tuple[ExecutionOut, bool]]]) -> Answer:
    """The answer to a started run: the execution (202 and its Location when it has not
    finished), or why its run ended without a document."""
    with _upstream():
        execution, finished = await start()
    if finished and execution.status in ("failed", "cancelled"):
        return problem_answer(_failed(execution))
    location = {"Location": f"/executions/{execution.execution_id}"}
    return Answer(200 if finished else 202, execution.model_dump(mode="json"),
                  {} if finished else location)


@router.post("/documents/{document_id}/refresh", response_model=ExecutionOut,
             summary="Write a generated document again from its spec's latest version, as "
             "its next version: answered as /execute-query is")
async def refresh_document(document_id: Id, request: Request, spaces: Spaces,
                           body: RefreshIn | None = None,
                           wait: float | None = Query(None, ge=0, le=MAX_WAIT,
                                                      description="answer 202 after this "
                                                      "long (the synchronous limit if not "
                                                      "given; async: true is 0)"),
                           caller: Principal = Depends(write),
                           svc: Interpreter = Depends(interpreter),
                           key: str | None = IdempotencyKeyHeader) -> Response:
    seconds = 0.0 if body is not None and body.run_async else wait
    return answered(request, await _once(
        svc, caller, spaces, key, json.dumps({"refresh": document_id, "wait": seconds}),
        lambda: _started(lambda: svc.refresh(document_id, caller, spaces, seconds, key))))


@router.get("/executions/{execution_id}",
            summary="Progress and result of an execution; `wait` long-polls for its end")
async def get_execution(execution_id: Id, spaces: Spaces,
                        wait: float = Query(0.0, ge=0, le=60),
                        caller: Principal = Depends(read),
                        svc: Interpreter = Depends(interpreter)) -> ExecutionOut:
    with _upstream():
        return await svc.execution(execution_id, caller, spaces, wait=wait)


@router.post("/executions/{execution_id}/cancel",
             summary="Stop a running execution; nothing of it is stored")
async def cancel_execution(execution_id: Id, spaces: Spaces,
                           caller: Principal = Depends(write),
                           svc: Interpreter = Depends(interpreter)) -> ExecutionOut:
    with _upstream():
        return await svc.cancel(execution_id, caller, spaces)


@router.get("/executions/{execution_id}/events",
            summary="Server-sent events: each step as it ends, then the result")
async def execution_events(execution_id: Id, spaces: Spaces,
                           caller: Principal = Depends(read),
                           svc: Interpreter = Depends(interpreter)) -> EventSourceResponse:
    with _upstream():  # 404 or 403 before the stream starts
        first = await svc.execution(execution_id, caller, spaces)

    async def events() -> AsyncIterator[dict[str, str]]:
        sent, current = 0, first
        while True:
            for step in current.steps[sent:]:
                yield {"event": "step", "data": json.dumps(step)}
            sent = len(current.steps)
            if current.status in FINISHED:
                yield {"event": current.status, "data": current.model_dump_json()}
                return
            await asyncio.sleep(0.3)
            current = await svc.execution(execution_id, caller, spaces)

    return EventSourceResponse(events())


def _get_and_head(path: str, **options: Any
                  ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """A GET route that answers HEAD too (RFC 9110), HEAD kept out of the OpenAPI
    document so that the operation is listed once."""
    def register(route: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        router.add_api_route(path, route, methods=["HEAD"], include_in_schema=False,
                             dependencies=READ, **options)
        return router.get(path, dependencies=READ, **options)(route)
    return register


@_get_and_head("/documents/{document_id}/provenance",
               summary="Where a generated document came from: every input and step")
async def provenance(document_id: Id, caller: Principal = Depends(read),
                     svc: Interpreter = Depends(interpreter)) -> dict[str, object]:
    with _upstream():
        return await svc.documents.provenance(document_id, caller)


_SEPARATOR = re.compile(r"[/\\]")
_NOT_TOKEN = re.compile(r'[^\x20-\x7e]|["%;\\]')  # what a quoted ASCII fallback cannot hold


def plain(name: str) -> str:
    return shown_as_is(_SEPARATOR.sub("_", name))


def content_disposition(filename: str, fallback: str) -> str:
    """`attachment` with the name as RFC 6266 says (UTF-8 `filename*`, after an ASCII
    `filename` for old clients), so no name can end the header, name a directory or
    show as another name; an empty one falls back to `fallback`."""
    # path separators and what does not show as itself (controls, bidi, zero-width) → _
    name = plain(filename).strip() or plain(fallback).strip() or "file"
    ascii_name = _NOT_TOKEN.sub("_", unicodedata.normalize("NFKD", name).encode(
        "ascii", "ignore").decode() or "file")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@_get_and_head("/documents/{document_id}/download", response_class=Response,
               summary="The generated file")
async def download(document_id: Id, caller: Principal = Depends(read),
                   svc: Interpreter = Depends(interpreter)) -> Response:
    with _upstream():
        data, media_type, filename = await svc.documents.download(document_id, caller)
    return Response(data, media_type=media_type or "application/octet-stream",
                    headers={"Content-Disposition": content_disposition(filename,
                                                                        document_id)})
