"""Ask for a document: the request in plain words, its plan before it runs, then its
steps as they happen (server-sent events), a way to stop it, and the document it made."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from jinja2 import Environment
from sse_starlette.sse import EventSourceResponse

from llmdocs.core.client import (
    BadRequest,
    Conflict,
    ServiceError,
    Unprocessable,
    acting_for,
)
from llmdocs.formats import FORMATS
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.interpreter.client import InterpreterClient
from llmdocs.services.interpreter.schemas import ExecutionOut
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import FINISHED
from llmdocs.services.web.pages import PageRoute, User, csrf_checked, render, signed_in
from llmdocs.services.web.partial import part, said

router = APIRouter(route_class=PageRoute, include_in_schema=False)
POLL_SECONDS = 0.4  # how often a live page's stream looks for new steps
SPECS_SHOWN = 50
ExecutionId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]
Field = Annotated[str, Form(max_length=4000)]
Short = Annotated[str, Form(max_length=2000)]


@dataclass(frozen=True)
class Asked:
    """What the form asks, as the interpreter takes it."""

    query: str = ""
    format: str = ""
    spec_url: str = ""
    spec_document_id: str = ""
    service: str = ""

    @property
    def text(self) -> str:
        """The query, naming the chosen registered service when it does not already:
        the interpreter finds a service by its name in the request's words."""
        name = self.service.strip()
        if not name or name.lower() in self.query.lower():
            return self.query
        return f"{self.query.rstrip(' .')} for the {name} service"

    def fields(self) -> dict[str, Any]:
        return {key: value for key, value in (
            ("format", self.format), ("spec_url", self.spec_url.strip()),
            ("spec_document_id", self.spec_document_id)) if value}


async def _choices(user: User) -> dict[str, Any]:
    """The stored specs and registered services the form offers as the spec."""
    specs, services = await asyncio.gather(
        part(user.client(DocStoreClient).list(tag="openapi", limit=SPECS_SHOWN)),
        part(user.client(OrchestratorClient).list_services()))
    return {"formats": FORMATS, "specs": specs.value.items if specs.value else [],
            "services": services.value or [],
            "choice_notes": [n for n in (specs.note, services.note) if n]}


async def _form_page(request: Request, user: User, asked: Asked, status: int = 200,
                     **context: Any) -> Response:
    return render(request, "ask.html", status=status, asked=asked, **await _choices(user),
                  **context)


@router.get("/ask")
async def ask(request: Request, user: User = signed_in,
              query: Annotated[str, Query(max_length=4000)] = "") -> Response:
    """The form: a request in plain words, its format and where its spec comes from."""
    return await _form_page(request, user, Asked(query=query), plan=None)


def _asked(query: str, format: str, spec_url: str, spec_document_id: str,
           service: str) -> Asked:
    return Asked(query=query.strip(), format=format, spec_url=spec_url,
                    spec_document_id=spec_document_id, service=service)


@router.post("/ask/plan", dependencies=[csrf_checked])
async def plan(request: Request, query: Field, user: User = signed_in, format: Short = "",
               spec_url: Short = "", spec_document_id: Short = "",
               service: Short = "") -> Response:
    """What the request would do, without doing it: intent, workflow, what is missing."""
    asked = _asked(query, format, spec_url, spec_document_id, service)
    try:
        planned = await user.client(InterpreterClient).interpret(asked.text, **asked.fields())
    except (BadRequest, Unprocessable) as exc:
        return await _form_page(request, user, asked, 422, plan=None, error=said(exc),
                                field_errors=exc.problem.get("errors") or [])
    return await _form_page(request, user, asked, plan=planned)


@router.post("/ask/run", dependencies=[csrf_checked])
async def run(request: Request, query: Field, user: User = signed_in, format: Short = "",
              spec_url: Short = "", spec_document_id: Short = "",
              service: Short = "") -> Response:
    """Start the request; its page shows the steps as they happen."""
    asked = _asked(query, format, spec_url, spec_document_id, service)
    fields = asked.fields()
    try:
        started = await user.client(InterpreterClient).execute(
            asked.text, format=fields.pop("format", None), run_async=True, **fields)
    except (BadRequest, Unprocessable) as exc:
        return await _form_page(request, user, asked, 422, plan=None, error=said(exc),
                                field_errors=exc.problem.get("errors") or [])
    return RedirectResponse(f"/ask/executions/{started.execution_id}", status_code=303)


@router.get("/ask/executions/{execution_id}")
async def execution(request: Request, execution_id: ExecutionId,
                    user: User = signed_in) -> Response:
    """A request's run: its steps so far (then live), and its document once made."""
    current = await user.client(InterpreterClient).execution(execution_id)
    return render(request, "execution.html", execution=current,
                  finished=current.status in FINISHED)


@router.post("/ask/executions/{execution_id}/cancel", dependencies=[csrf_checked])
async def cancel(request: Request, execution_id: ExecutionId,
                 user: User = signed_in) -> Response:
    """Stop the run; one that has already ended stays as it ended."""
    with suppress(Conflict):  # it ended before the click: its page says how
        await user.client(InterpreterClient).cancel(execution_id)
    return RedirectResponse(f"/ask/executions/{execution_id}", status_code=303)


def _fragment(env: Environment, template: str, **context: Any) -> str:
    return env.get_template(template).render(**context)


@router.get("/ask/executions/{execution_id}/events")
async def events(request: Request, execution_id: ExecutionId, user: User = signed_in,
                 after: Annotated[int, Query(ge=0, le=10_000)] = 0) -> Response:
    """Server-sent events for the page: each new step as an HTML fragment (`step`),
    then the outcome (`done`); `after` skips the steps the page already shows."""
    client = user.client(InterpreterClient)
    first = await client.execution(execution_id)  # a 404 or 403 page before the stream
    env: Environment = request.app.state.templates
    settings, key, principal = (request.app.state.settings, request.app.state.spec.key,
                                user.principal)

    async def latest() -> ExecutionOut:
        with acting_for(settings, key, principal):  # the stream outlives the page's call
            return await client.execution(execution_id)

    async def stream() -> AsyncIterator[dict[str, str]]:
        sent, current = after, first
        while True:
            for step in current.steps[sent:]:
                yield {"event": "step", "data": _fragment(env, "_step.html", step=step)}
            sent = max(sent, len(current.steps))
            if current.status in FINISHED:
                yield {"event": "done",
                       "data": _fragment(env, "_outcome.html", execution=current)}
                return
            await asyncio.sleep(POLL_SECONDS)
            try:
                current = await latest()
            except ServiceError as exc:
                yield {"event": "done", "data": _fragment(env, "_outcome.html",
                                                          execution=current, note=said(exc))}
                return

    return EventSourceResponse(stream(), ping=15)
