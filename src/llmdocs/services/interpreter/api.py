"""HTTP routes of the interpreter. Routes parse, call service.py and shape the answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sse_starlette.sse import EventSourceResponse

from llmdocs.core.auth import require
from llmdocs.core.client import Conflict, NotFound, ServiceError, Unprocessable
from llmdocs.core.errors import Problem
from llmdocs.services.interpreter.schemas import ExecutionOut, InterpretOut, QueryIn
from llmdocs.services.interpreter.service import Interpreter
from llmdocs.services.orchestrator.schemas import FINISHED

router = APIRouter(tags=["interpreter"])
READ = [Depends(require("queries:read"))]
WRITE = [Depends(require("queries:write"))]
Id = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]


async def interpreter(request: Request) -> Interpreter:
    return request.app.state.interpreter  # type: ignore[no-any-return]


def _problem(exc: ServiceError) -> Problem:
    """Another service's refusal, said as ours (a 502 when it failed outright)."""
    detail = str(exc.problem.get("detail") or exc)
    if isinstance(exc, NotFound):
        return Problem(404, detail)
    if isinstance(exc, Conflict):
        return Problem(409, detail)
    if isinstance(exc, Unprocessable):
        return Problem(422, detail, errors=exc.problem.get("errors"))
    return Problem(502, f"{exc.service} failed: {detail}")


@router.post("/interpret", dependencies=READ,
             summary="The intent, entities and workflow of a request, without running it")
async def interpret(body: QueryIn, svc: Interpreter = Depends(interpreter)) -> InterpretOut:
    return await svc.interpret(body)


@router.post("/execute-query", dependencies=WRITE,
             summary="Run a request: 200 with the document, or 202 with `async: true`")
async def execute_query(body: QueryIn, response: Response,
                        svc: Interpreter = Depends(interpreter)) -> ExecutionOut:
    try:
        execution, finished = await svc.execute(body)
    except ServiceError as exc:
        raise _problem(exc) from None
    if not finished:
        response.status_code = 202
        response.headers["Location"] = f"/executions/{execution.execution_id}"
    elif execution.status == "failed":
        raise Problem(422, f"The request could not be carried out: {execution.error}",
                      errors=[{"field": "query", "message": execution.error or "",
                               "execution_id": execution.execution_id}])
    return execution


@router.get("/executions/{execution_id}", dependencies=READ,
            summary="Progress and result of an execution; `wait` long-polls for its end")
async def get_execution(execution_id: Id, wait: float = Query(0.0, ge=0, le=60),
                        svc: Interpreter = Depends(interpreter)) -> ExecutionOut:
    return await svc.execution(execution_id, wait=wait)


@router.post("/executions/{execution_id}/cancel", dependencies=WRITE,
             summary="Stop a running execution; nothing of it is stored")
async def cancel_execution(execution_id: Id, svc: Interpreter = Depends(interpreter)
                           ) -> ExecutionOut:
    try:
        return await svc.cancel(execution_id)
    except ServiceError as exc:
        raise _problem(exc) from None


@router.get("/executions/{execution_id}/events", dependencies=READ,
            summary="Server-sent events: each step as it ends, then the result")
async def execution_events(execution_id: Id,
                           svc: Interpreter = Depends(interpreter)) -> EventSourceResponse:
    first = await svc.execution(execution_id)  # 404 before the stream starts

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
            current = await svc.execution(execution_id)

    return EventSourceResponse(events())


@router.get("/documents/{document_id}/provenance", dependencies=READ,
            summary="Where a generated document came from: every input and step")
async def provenance(document_id: Id, svc: Interpreter = Depends(interpreter)
                     ) -> dict[str, object]:
    try:
        return await svc.provenance(document_id)
    except ServiceError as exc:
        raise _problem(exc) from None


@router.get("/documents/{document_id}/download", dependencies=READ,
            response_class=Response, summary="The generated file")
async def download(document_id: Id, svc: Interpreter = Depends(interpreter)
                   ) -> Response:
    try:
        data, media_type, filename = await svc.download(document_id)
    except ServiceError as exc:
        raise _problem(exc) from None
    return Response(data, media_type=media_type or "application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
