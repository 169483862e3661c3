"""The interpreter's logic: request → intent and entities → a workflow run in the
orchestrator (or a direct doc-store answer for list and search), with executions and
sessions kept so that progress can be followed and follow-ups refer to what came
before. No HTTP here."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, cast

import structlog
from sqlalchemy import ColumnElement, CursorResult, select, true, update
from sqlalchemy.dialects import postgresql, sqlite

from llmdocs.core import tracing
from llmdocs.core.audit import touched
from llmdocs.core.auth import Principal
from llmdocs.core.client import (
    BadRequest,
    ServiceError,
    Unprocessable,
    acting_for,
)
from llmdocs.core.config import Settings
from llmdocs.core.db import Database, utcnow
from llmdocs.core.events import Event, EventBus, make_event
from llmdocs.core.idempotency import IdempotencyKeys, request_hash
from llmdocs.core.ids import new_id
from llmdocs.core.middleware import correlation_id_var
from llmdocs.core.spaces import DEFAULT_SPACE, SpaceView
from llmdocs.provenance import requester
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.gateway.client import GatewayClient
from llmdocs.services.interpreter import LONG_CALL_SECONDS, LONG_POLL_SECONDS
from llmdocs.services.interpreter import intent as rules
from llmdocs.services.interpreter.documents import GeneratedDocuments, with_run
from llmdocs.services.interpreter.errors import CannotRun, NoSuch, NotAllowed, NothingToCancel
from llmdocs.services.interpreter.models import Execution, IdempotencyKey, Session
from llmdocs.services.interpreter.schemas import ExecutionOut, InterpretOut, QueryIn
from llmdocs.services.interpreter.settings import InterpreterSettings
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import (
    FINISHED,
    READ_DOCUMENTS,
    WRITE_DOCUMENTS,
    WorkflowRunOut,
    reads_documents,
)
from llmdocs.services.promptstore.client import PromptStoreClient

log = structlog.get_logger(__name__)
WORKFLOW = "document-generation"
CONSISTENCY = "consistency-check"
DOC_TYPES = {"generate_document": "api_documentation", "summarize": "summary",
             "answer_question": "answer"}
NEEDS_SPEC = ("which API: name a service (\"for the user service\"), a stored spec "
              "(spec_document_id) or a spec URL")
NO_PREVIOUS = ("there is no previous result in this session to change: a follow-up such as "
               "\"now as PDF\" needs an earlier request with the same session_id")
LISTING = ("list_documents", "search_documents")
ADMIN = "queries:admin"  # acts for any user, like a service
# the orchestrator's announcements of a run's end (a cancelled run's is `failed`)
RUN_ENDS = ("llmdocs.workflow.completed", "llmdocs.workflow.failed")


def check_owner(caller: Principal, owner: str, what: str) -> None:
    if not caller.may_touch(owner, ADMIN):
        raise NotAllowed(f"{what} belongs to another user.")


def writable(view: SpaceView, space: str) -> None:
    """Refuse a run that would store in a space the caller may not write in."""
    if not view.may_write(space):
        raise NotAllowed(f"This request would store a document in space {space!r}: that "
                         "takes the editor or admin role there (or there is no such space).")


def workflow_of(intent: str | None) -> str:
    return CONSISTENCY if intent == "analyze_consistency" else WORKFLOW


def refusal(exc: ServiceError) -> str:
    """What a called service refused of what the interpreter made of the query."""
    return "; ".join(f"{e.get('message')} ({e.get('field')} of the {exc.service} request)"
                     for e in exc.problem.get("errors") or []
                     ) or str(exc.problem.get("detail") or exc)


@contextmanager
def from_query() -> Iterator[None]:
    """A called service's refusal of what the interpreter made of the query: the
    entities, search words and a session's additions it found there. The caller sent
    only the query, so the refusal names it, not the other service's field."""
    try:
        yield
    except (BadRequest, Unprocessable) as exc:
        said = refusal(exc)
        raise CannotRun(f"What the query asks for cannot be run: {said}",
                        errors=[{"field": "query", "message": said}]) from None


def run_key(caller: Principal, key: str | None) -> str | None:
    """The orchestrator's Idempotency-Key for a run, from the caller's own."""
    return request_hash(f"{caller.subject} {key}") if key else None


class Interpreter:
    def __init__(self, settings: Settings, database: Database, events: EventBus, *,
                 orchestrator: OrchestratorClient, gateway: GatewayClient,
                 prompts: PromptStoreClient, docs: DocStoreClient,
                 tuning: InterpreterSettings | None = None) -> None:
        self.settings = settings
        self.database = database
        self.events = events
        self.tuning = tuning or InterpreterSettings()
        self.orchestrator = orchestrator
        self.gateway = gateway
        self.prompts = prompts
        self.docs = docs
        self.documents = GeneratedDocuments(settings, docs, orchestrator, ADMIN)
        # a claim unanswered after the longest a request can take is abandoned
        self.keys = IdempotencyKeys(database, IdempotencyKey, timedelta(
            seconds=self.tuning.sync_timeout_seconds + LONG_CALL_SECONDS))

    # --- understanding ------------------------------------------------------------

    async def interpret(self, body: QueryIn, caller: Principal) -> InterpretOut:
        user = caller.acting_for(body.user_id, ADMIN)
        previous, previous_execution = await self._previous(body.session_id, caller)
        change = rules.follow_up(body.query, previous or {})
        if previous is None and change is not None and rules.by_rules(body.query).intent is None:
            return InterpretOut(intent=None, confidence=0.9, entities=change, method="session",
                                follow_up=True, workflow=None, workflow_input=None,
                                missing=[NO_PREVIOUS])
        if previous is not None and change is not None:
            workflow_input = {**previous, **change, "query": previous["query"],
                              "follow_up": await self._refers_to(body, previous_execution),
                              "space": body.space or previous.get("space") or DEFAULT_SPACE}
            if body.format:
                workflow_input["format"] = body.format
            if workflow_of(previous.get("intent")) == CONSISTENCY:
                workflow_input.pop("instructions", None)  # a check takes no instructions
            return InterpretOut(intent=previous.get("intent"), confidence=0.9,
                                entities=change, method="session", follow_up=True,
                                workflow=workflow_of(previous.get("intent")),
                                workflow_input=workflow_input, missing=[])
        found = rules.by_rules(body.query)
        if found.intent is None and self.tuning.use_model:
            found = await self._ask_model(body, user, found)
        return self._plan(body, found)

    async def preview(self, body: QueryIn, caller: Principal) -> InterpretOut:
        """The plan, checked by the workflow it names as a run would be: a plan the run
        would refuse says why in `missing`, as one the rules could not make does."""
        plan = await self.interpret(body, caller)
        if plan.workflow is None or plan.workflow_input is None:
            return plan
        try:
            await self.orchestrator.check_run(plan.workflow, plan.workflow_input)
        except (BadRequest, Unprocessable) as exc:
            return plan.model_copy(update={"workflow": None, "workflow_input": None,
                                           "missing": [refusal(exc)]})
        return plan

    async def _ask_model(self, body: QueryIn, user: str, found: rules.Interpretation
                         ) -> rules.Interpretation:
        """The model's reading; when the gateway or the model fail, the rules stand."""
        try:
            rendered = await self.prompts.render("intent-detection", {
                "query": body.query, "intents": ", ".join(rules.INTENTS)})
            answer = await self.gateway.query(rendered.text or "", json_schema=rules.MODEL_SCHEMA,
                                              max_tokens=self.tuning.model_tokens,
                                              temperature=0.0, user_id=user)
        except ServiceError as exc:
            log.warning("intent model unavailable: rules only", error=str(exc))
            return found
        return rules.merge_model(found, body.query, answer.response)

    def _plan(self, body: QueryIn, found: rules.Interpretation) -> InterpretOut:
        entities = dict(found.entities)
        for key in ("spec_document_id", "spec_url"):
            if getattr(body, key):
                entities[key] = getattr(body, key)
        if body.document_ids:
            entities["document_ids"] = body.document_ids
        missing: list[str] = []
        workflow_input: dict[str, Any] | None = None
        intent = found.intent
        if intent is None:
            missing.append("what to do: ask to create documentation, summarize, answer a "
                           "question, check consistency, or list/search documents")
        elif intent == "analyze_consistency":
            if not any(k in entities for k in ("service", "spec_url", "spec_document_id")):
                missing.append(NEEDS_SPEC)
            workflow_input = {
                "query": body.query, "format": body.format or entities.get("format",
                                                                           "markdown"),
                "document_id": next(iter(entities.get("document_ids", [])), None),
                "service": entities.get("service"),
                "spec_document_id": entities.get("spec_document_id"),
                "spec_url": entities.get("spec_url"), "intent": intent,
                "entities": entities, "session_id": body.session_id,
                "space": body.space or DEFAULT_SPACE}
        elif intent in DOC_TYPES:
            doc_type = DOC_TYPES[intent] if intent != "generate_document" else \
                entities.get("doc_type", "api_documentation")
            has_spec = any(k in entities for k in ("service", "spec_url", "spec_document_id"))
            if doc_type == "api_documentation" and not has_spec:
                missing.append(NEEDS_SPEC)
            workflow_input = {
                "query": body.query, "format": body.format or entities.get("format",
                                                                           "markdown"),
                "doc_type": doc_type, "intent": intent, "entities": entities,
                "service": entities.get("service"),
                "spec_document_id": entities.get("spec_document_id"),
                "spec_url": entities.get("spec_url"),
                "document_ids": entities.get("document_ids", []),
                "search": None if has_spec or entities.get("document_ids") else body.query,
                "session_id": body.session_id, "space": body.space or DEFAULT_SPACE}
        return InterpretOut(intent=intent, confidence=found.confidence, entities=entities,
                            method=found.method, follow_up=False,
                            workflow=workflow_of(intent) if workflow_input and not missing
                            else None,
                            workflow_input=None if missing else workflow_input,
                            missing=missing)

    # --- executing ------------------------------------------------------------------

    async def execute(self, body: QueryIn, caller: Principal, view: SpaceView,
                      key: str | None = None) -> tuple[ExecutionOut, bool]:
        """Run the request; (the execution, whether it is finished). Every refusal comes
        before the run starts: nothing is started or stored for a refused request. Once
        the run has started, a wait cut short (any failure) is unfinished. With the
        caller's Idempotency-Key `key`, a retry gets the same run (`_start`)."""
        user = caller.acting_for(body.user_id, ADMIN)
        plan = await self.interpret(body, caller)
        if plan.missing:
            raise CannotRun("The request cannot be mapped to an action: "
                            + "; ".join(plan.missing), errors=[
                                {"field": "query", "message": m,
                                 "understood": {"intent": plan.intent,
                                                "entities": plan.entities}}
                              for m in plan.missing])
        if plan.intent in LISTING:
            # answered at once; `async` is honoured (202, the execution already final)
            with acting_for(self.settings, "interpreter", caller):
                return await self._documents(body, user, plan), not body.run_async
        assert plan.workflow is not None and plan.workflow_input is not None
        writable(view, plan.workflow_input["space"])
        if reads_documents(plan.workflow_input) and not caller.is_service \
                and not caller.allows(READ_DOCUMENTS):  # the run reads them as a service
            raise NotAllowed("This request would read stored documents (it names or "
                             f"searches them): that takes the {READ_DOCUMENTS} scope.")
        if body.session_id:
            await self._claim(body.session_id, user, caller)
        with from_query():
            run = await self._start(plan.workflow, plan.workflow_input, user,
                                    run_key(caller, key))
        execution = self._out(await self._record(body, user, plan, run), run)
        if body.session_id:
            await self._remember(body.session_id, plan.workflow_input,
                                 execution.execution_id)
        return await self._follow(execution, caller, view,
                                  0.0 if body.run_async else self.tuning.sync_timeout_seconds)

    async def refresh(self, document_id: str, caller: Principal, view: SpaceView,
                      wait: float | None, key: str | None = None) -> tuple[ExecutionOut, bool]:
        """Write a generated document again from its spec's latest version, as its next
        version; (the execution, whether it is finished) after `wait` seconds (the
        synchronous limit when None). The caller must be able to read and write it; a
        `key` (Idempotency-Key) starts its run once, as `execute`'s does."""
        for scope in (READ_DOCUMENTS, WRITE_DOCUMENTS):
            if not caller.is_service and not caller.allows(scope):
                raise NotAllowed(f"A refresh reads the document and stores its next "
                                 f"version: that takes the {scope} scope.")
        with acting_for(self.settings, "interpreter", caller):  # the caller's rights
            record = await self.docs.provenance(document_id)
            space = (await self.docs.get(document_id)).space
        writable(view, space)  # its next version stays where it is
        if not record.provenance:
            raise CannotRun(f"Document {document_id} was not generated by llmdocs: only a "
                            "generated API document can be refreshed.", errors=[
                                {"field": "document_id", "message": "not generated"}])
        # a service refreshes for the user the document was made for
        user = caller.subject if not caller.acts_for_anyone(ADMIN) else (
            requester(record.provenance) or caller.subject)
        query = f"Refresh document {document_id}"
        request = {"query": query, "refresh_document_id": document_id, "space": space}
        plan = InterpretOut(intent="refresh_document", confidence=1.0,
                            entities={"document_id": document_id}, method="request",
                            follow_up=False, workflow=WORKFLOW, workflow_input=request,
                            missing=[])
        run = await self._start(WORKFLOW, request, user, run_key(caller, key))
        execution = self._out(await self._record(QueryIn(query=query), user, plan, run), run)
        return await self._follow(execution, caller, view, self.tuning.sync_timeout_seconds
                                  if wait is None else wait)

    async def _follow(self, execution: ExecutionOut, caller: Principal, view: SpaceView,
                      seconds: float) -> tuple[ExecutionOut, bool]:
        """The execution once its run has finished, or as it is after `seconds`; a wait
        cut short (any failure) is unfinished."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while execution.status not in FINISHED and loop.time() < deadline:
            try:
                execution = await self.execution(execution.execution_id, caller, view, wait=min(
                    LONG_POLL_SECONDS, max(deadline - loop.time(), 0.0)))
            except Exception as exc:  # the run goes on (or resumes): never a second one
                log.warning("run not followed to its end", error=str(exc),
                            execution_id=execution.execution_id)
                break
        return execution, execution.status in FINISHED

    async def _start(self, workflow: str, data: dict[str, Any], user: str,
                     key: str | None) -> WorkflowRunOut:
        """The run of a keyed request (`key`: see `run_key`): a retry after an answer lost
        to an outage (the run started, the orchestrator or our database gone before the
        answer) is the same run, not a second document. A run that failed is followed by
        one keyed by the failed run: every retry walks the same chain to the live one."""
        if key is None:
            return await self.orchestrator.start_run(workflow, data, user_id=user)
        while True:
            started = await self.orchestrator.start_run(workflow, data, user_id=user,
                                                        key=key)
            run = await self.orchestrator.run(started.id)  # a replay says how it began
            if run.status != "failed" or run.failure == "request":
                return run
            key = request_hash(f"{key}\n{run.id}")

    async def _documents(self, body: QueryIn, user: str, plan: InterpretOut) -> ExecutionOut:
        """A list or search answer, recorded as a finished execution with no run, so that
        its execution id can be read again like any other."""
        if body.format:
            raise CannotRun("Listing and searching answer with JSON: format does not "
                            "apply to them.", errors=[{
                                "field": "format", "message": "does not apply to a list or "
                                "search request; leave it out"}])
        if plan.intent == "list_documents":
            page = await self.docs.list(limit=20, sort="-updated_at")
            found = [i.model_dump(mode="json", include={"document_id", "title", "format",
                                                        "version", "updated_at"})
                     for i in page.items]
        else:
            with from_query():
                hits = await self.docs.search(rules.search_terms(body.query), limit=20)
            found = [h.model_dump(mode="json", include={"document_id", "title", "format",
                                                        "version", "snippet", "score"})
                     for h in hits.items]
        return self._listed(await self._record(body, user, plan, None,
                                               json.dumps({"documents": found})))

    def _listed(self, row: Execution) -> ExecutionOut:
        return ExecutionOut(execution_id=row.id, run_id=None, status=row.status,
                            intent=json.loads(row.interpretation)["intent"], query=row.query,
                            session_id=row.session_id, space=row.space,
                            documents=json.loads(row.result or "{}").get("documents", []),
                            correlation_id=row.correlation_id)

    async def _record(self, body: QueryIn, user: str, plan: InterpretOut,
                      run: WorkflowRunOut | None, result: str | None = None) -> Execution:
        """Our record of an execution, in its run's space; one with no run (a listing)
        has run_id ''."""
        now = utcnow()
        space = (plan.workflow_input or {}).get("space") or body.space or DEFAULT_SPACE
        row = Execution(id=new_id(), run_id=run.id if run else "",
                        session_id=body.session_id, user_id=user, space=space,
                        query=body.query,
                        interpretation=plan.model_dump_json(),
                        status=run.status if run else "completed",
                        result=result, error=None, created_at=now, updated_at=now,
                        correlation_id=correlation_id_var.get())
        async with self.database.transaction() as session:
            session.add(row)
        await self._announce("accepted", row, intent=plan.intent, workflow=plan.workflow)
        if run is None:  # a listing is answered at once
            await self._announce("completed", row)
        return row

    async def _announce(self, what: str, row: Execution, **data: Any) -> None:
        """`llmdocs.execution.<what>`, with the correlation id of the request that
        started the execution (its end is seen later, by the bus or a poll)."""
        event = make_event(
            "interpreter", f"llmdocs.execution.{what}",
            {"execution_id": row.id, "run_id": row.run_id or None, "user_id": row.user_id,
             "space": row.space, **data}, subject=row.id, space=row.space)
        await self.events.publish(event.model_copy(update={
            "correlationid": row.correlation_id or event.correlationid}))

    async def _previous(self, session_id: str | None, caller: Principal
                        ) -> tuple[dict[str, Any] | None, str | None]:
        """The session's last request and the execution that ran it (403 when the
        session is another user's)."""
        if session_id is None:
            return None, None
        async with self.database.session() as session:
            row = await session.get(Session, session_id)
        if row is None:
            return None, None
        check_owner(caller, row.user_id, f"Session {session_id!r}")
        if not row.last_request:
            return None, None
        return json.loads(row.last_request), row.last_execution_id

    async def _refers_to(self, body: QueryIn, execution_id: str | None) -> dict[str, Any]:
        """What a follow-up changes: its own words, the previous execution, its run and
        the document it produced (asked of the run when our record is not final yet)."""
        ref: dict[str, Any] = {"query": body.query, "previous_execution_id": execution_id,
                               "previous_run_id": None, "previous_document_id": None}
        if execution_id is None:
            return ref
        row = await self._execution_row(execution_id)
        result = json.loads(row.result) if row.result else (
            await self.orchestrator.run(row.run_id)).result or {}
        return {**ref, "previous_run_id": row.run_id,
                "previous_document_id": result.get("document_id")}

    async def _claim(self, session_id: str, user: str, caller: Principal) -> None:
        """Make the session `user`'s unless it is someone's already (403 when it is
        another user's), before the run starts. An insert that ignores a conflict, then
        a read: concurrent first requests of a new session all see the one owner."""
        insert = (postgresql.insert(Session) if self.database.dialect == "postgresql"
                  else sqlite.insert(Session))
        async with self.database.transaction() as session:
            await session.execute(insert.values(id=session_id, user_id=user,
                                                updated_at=utcnow()).on_conflict_do_nothing())
            owner = (await session.execute(select(Session.user_id).where(
                Session.id == session_id))).scalar_one()
        check_owner(caller, owner, f"Session {session_id!r}")

    async def _remember(self, session_id: str, request: dict[str, Any], execution_id: str
                        ) -> None:
        async with self.database.transaction() as session:
            await session.execute(update(Session).where(Session.id == session_id).values(
                last_request=json.dumps(request), last_execution_id=execution_id,
                updated_at=utcnow()))

    async def execution(self, execution_id: str, caller: Principal, view: SpaceView,
                        wait: float = 0.0) -> ExecutionOut:
        row = await self._owned(execution_id, caller, view)
        if not row.run_id:
            return self._listed(row)
        return await self._sync(row, await self.orchestrator.run(row.run_id, wait=wait))

    async def cancel(self, execution_id: str, caller: Principal, view: SpaceView
                     ) -> ExecutionOut:
        """Stop the execution's run (409 once it has finished)."""
        row = await self._owned(execution_id, caller, view)
        if not row.run_id:
            raise NothingToCancel(f"Execution {execution_id} is a list or search answer: it "
                                  "completed at once, there is nothing to cancel.")
        return await self._sync(row, await self.orchestrator.cancel_run(row.run_id))

    async def _owned(self, execution_id: str, caller: Principal, view: SpaceView
                     ) -> Execution:
        """The execution, when the caller may see it: one in a space the caller is no
        member of is missing to them (404, the same answer), another user's is a 403.
        Another user's list or search answer is missing even to those who act for anyone
        (but services and space admins): it holds what that user's spaces let them find."""
        row = await self._execution_row(execution_id, view)
        check_owner(caller, row.user_id, f"Execution {execution_id}")
        if not row.run_id and row.user_id != caller.subject and not view.everything:
            raise NoSuch(f"No execution {execution_id!r}.")
        return row

    async def _execution_row(self, execution_id: str, view: SpaceView | None = None
                             ) -> Execution:
        async with self.database.session() as session:
            row = await session.get(Execution, execution_id)
        touched(None if row is None else row.space)
        if row is None or (view is not None and not view.may_read(row.space)):
            raise NoSuch(f"No execution {execution_id!r}.")
        return row

    async def run_ended(self, event: Event) -> None:
        """A run's end from the bus, kept and announced for the executions it answers
        as a poll would, so that it is known when no one asks. Delivery is at least
        once: `_sync` makes a repeated end, or one a poll saw first, change nothing.
        Done in the event's trace, as its correlation id is the current one."""
        run_id = event.data.get("run_id")
        if not run_id or not isinstance(run_id, str):
            return
        with tracing.continuing(event.traceparent):
            async with self.database.session() as session:
                rows = (await session.scalars(
                    select(Execution).where(Execution.run_id == run_id))).all()
            if rows:  # a run of ours: its record says how it ended
                run = await self.orchestrator.run(run_id)
                for row in rows:
                    await self._sync(row, run)

    async def _sync(self, row: Execution, run: WorkflowRunOut) -> ExecutionOut:
        """The execution as its run now is, the change kept in our record. The change is
        conditional in SQL: of a poll and the bus seeing the same end, only the one whose
        update changed the row announces it, and a run read before its end (by a poll
        still in flight) never takes a finished record back to running."""
        if run.status != row.status:
            ends: ColumnElement[bool] = true() if run.status in FINISHED else \
                Execution.status.not_in(FINISHED)
            async with self.database.transaction() as session:
                changed = await session.execute(
                    update(Execution).where(Execution.id == row.id,
                                            Execution.status != run.status, ends)
                    .values(status=run.status, error=run.error, updated_at=utcnow(),
                            result=json.dumps(run.result) if run.result else None))
            # the one caller whose update made the change announces it
            if run.status in FINISHED and cast(CursorResult[Any], changed).rowcount:
                await self._announce(run.status, row, error=run.error)
        return self._out(row, run)

    def _out(self, row: Execution, run: WorkflowRunOut) -> ExecutionOut:
        plan = json.loads(row.interpretation)
        result = run.result or {}
        document_id = result.get("document_id")
        base = self.settings.url_for("interpreter")
        return ExecutionOut(
            execution_id=row.id, run_id=run.id, status=run.status, intent=plan["intent"],
            query=row.query, session_id=row.session_id, space=row.space,
            document_id=document_id,
            filename=result.get("filename"), format=result.get("format") or (
                plan.get("workflow_input") or {}).get("format"),
            download_url=f"{base}/documents/{document_id}/download" if document_id else None,
            provenance_url=f"{base}/documents/{document_id}/provenance"
            if document_id else None,
            provenance=with_run(result.get("provenance"), run),
            steps=[s.model_dump(mode="json") for s in run.steps], error=run.error,
            failure=run.failure, correlation_id=row.correlation_id)
