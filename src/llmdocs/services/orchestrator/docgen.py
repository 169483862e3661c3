"""The document-generation workflow, a LangGraph graph: analyze → (choose_template ∥
gather_context) → outline → write → review ⇄ revise → format → store. The model writes
only prose; the reference comes from the spec and the review checks the draft against it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cachetools import LRUCache
from langgraph.graph import END, START, StateGraph

from llmdocs.core import tracing
from llmdocs.core.client import ServiceError
from llmdocs.core.config import LINK_LOCAL
from llmdocs.core.db import escaped
from llmdocs.core.errors import outlasting
from llmdocs.core.events import make_event
from llmdocs.core.fetch import Network
from llmdocs.core.spaces import DEFAULT_SPACE
from llmdocs.formats import GeneratedDocument, Section, render
from llmdocs.openapi import (
    Operation,
    SpecBounds,
)
from llmdocs.openapi import markdown as md
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.docstore.schemas import DocumentSummary
from llmdocs.services.gateway.client import GatewayClient
from llmdocs.services.orchestrator import apidoc, apisections, gate, refresh, review
from llmdocs.services.orchestrator.errors import Invalid
from llmdocs.services.orchestrator.prose import (
    PROSE_KINDS,
    ProseCall,
    api_call,
    asked,
    checked_sections,
    errors_asked,
    lead,
    vocabulary_of,
)
from llmdocs.services.orchestrator.registry import Registry
from llmdocs.services.orchestrator.schemas import DocRequest, StepRecord, WorkflowInput
from llmdocs.services.orchestrator.settings import DocgenSettings
from llmdocs.services.orchestrator.spacedocs import SpaceDocs, readable
from llmdocs.services.orchestrator.specsource import SpecSource, document
from llmdocs.services.orchestrator.workflow_state import (
    DocState,
    Node,
    Trace,
    WorkflowError,
    provenance_of_run,
    valid_request,
)
from llmdocs.services.promptstore.client import PromptStoreClient

NAME = "document-generation"
VERSION = "1"
STEPS = ["analyze", "choose_template", "gather_context", "outline", "write", "review",
         "revise", "format", "store"]


@dataclass
class Deps:
    gateway: GatewayClient
    prompts: PromptStoreClient
    docs: DocStoreClient
    registry: Registry
    settings: DocgenSettings
    on_step: Callable[[str, StepRecord], Awaitable[None]]
    # the run's commit point, before its result is stored: raises CancelledError when the
    # run was cancelled first; from then on a cancel is refused
    storing: Callable[[str], Awaitable[None]]
    spec_bounds: SpecBounds = field(default_factory=SpecBounds)
    blocked_networks: Sequence[Network] = LINK_LOCAL  # a spec URL is never fetched from
    # true while a run executes for the first time: nothing of it can be stored yet
    first_attempt: Callable[[str], bool] = lambda _run_id: False
    # whether every user may read the `default` space: a run reads documents there too
    default_open: bool = True


class DocGen:
    """The graph's nodes, with the clients they call."""

    # the workflow's catalog entry (a subclass that is another workflow names its own)
    NAME, VERSION, STEPS = NAME, VERSION, STEPS
    DESCRIPTION = ("A plain-language request becomes a reviewed document, stored with "
                   "provenance: analyze → (choose template ∥ gather context) → outline → "
                   "write → review → revise (bounded) → format → store.")
    REQUEST: type[WorkflowInput] = DocRequest

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.specs = SpecSource(deps.registry, deps.spec_bounds, deps.blocked_networks)
        # by the id of a state's list of operations: the list, and the same validated
        # (see `operations_of`); a few specs' worth, as a large spec's are megabytes
        self._operations: LRUCache[int, tuple[list[Any], list[Operation]]] = LRUCache(
            maxsize=16)

    # --- plumbing -------------------------------------------------------------------

    def _docs(self, request: dict[str, Any]) -> SpaceDocs:
        """The documents a run of `request` may read (see `spacedocs`)."""
        return SpaceDocs(self.deps.docs, readable(request.get("space") or DEFAULT_SPACE,
                                                  self.deps.default_open))

    def _step(self, name: str, fn: Node) -> Node:
        """Time a node, record it in the state and report it to the run's progress; a
        dependency's outage is waited out (`outage_seconds`) rather than fail the run."""
        async def node(state: DocState) -> dict[str, Any]:
            started, at = time.perf_counter(), datetime.now(UTC)
            try:
                with tracing.span(f"step {name}", attributes={
                        "llmdocs.workflow.step": name, "llmdocs.run_id": state["run_id"]}):
                    update = await outlasting(lambda: fn(state),
                                              self.deps.settings.outage_seconds, name)
            except Exception as exc:
                record = StepRecord(name=name, status="failed", started_at=at,
                                    duration_ms=(time.perf_counter() - started) * 1000,
                                    detail=escaped(str(exc), 500))
                await self.deps.on_step(state["run_id"], record)
                raise
            record = StepRecord(name=name, status="completed", started_at=at,
                                duration_ms=(time.perf_counter() - started) * 1000)
            await self.deps.on_step(state["run_id"], record)
            return {**update, "steps": [record.model_dump(mode="json")]}

        return node

    async def _llm(self, trace: Trace, state: DocState, prompt: str,
                   variables: dict[str, Any], max_tokens: int,
                   schema: dict[str, Any] | None = None, model: str | None = None) -> str:
        """One model call with a prompt from the prompt-store, through the gateway."""
        return (await self._call(trace, state, prompt, variables, max_tokens, schema,
                                 model))[0]

    async def _call(self, trace: Trace, state: DocState, prompt: str,
                    variables: dict[str, Any], max_tokens: int,
                    schema: dict[str, Any] | None = None, model: str | None = None
                    ) -> tuple[str, str]:
        """The model's answer and the prompt as rendered (what an echo is judged by); its
        latency is the provider's time (0 when cached), its wait for the model apart."""
        trace.called("prompt-store", f"render {prompt}")
        rendered = await self.deps.prompts.render(prompt, variables)
        trace.prompts_used.append({
            "prompt_id": rendered.prompt_id, "name": rendered.name,
            "version": rendered.version, "label": rendered.label,
            "rendered_hash": rendered.rendered_hash, "step": trace.step})
        temperature = rendered.config.get("temperature")
        trace.called("llm-gateway", "query")
        answer = await self.deps.gateway.query(
            rendered.text or "", model=model, max_tokens=max_tokens, json_schema=schema,
            temperature=float(temperature) if temperature is not None else None,
            user_id=state["user_id"],
            metadata={"prompt_id": rendered.prompt_id, "prompt_version": rendered.version,
                      "run_id": state["run_id"], "step": trace.step})
        trace.llm_calls.append({
            "step": trace.step, "prompt": rendered.name, "provider": answer.provider,
            "model": answer.model, "tokens": answer.tokens.model_dump(),
            "cost": answer.cost, "latency_ms": round(answer.provider_time * 1000, 2),
            "queue_ms": round(answer.queue_time * 1000, 2), "cached": answer.cached,
            "routing_reason": answer.routing.reason,
            "correlation_id": answer.correlation_id})
        return answer.response, rendered.text or ""

    def operations_of(self, state: DocState) -> list[Operation]:
        """The spec's operations, validated once per list, not once per step (at 300
        operations that is 5 ms a step)."""
        # a run's steps here get the list gather_context set (and runs of a cached spec
        # the same one); a resumed run reads a new one. The entry holds the list, so its
        # id is not reused while the entry lives.
        listed = state["context"].get("operations", [])
        cached = self._operations.get(id(listed))
        if cached is not None and cached[0] is listed:
            return cached[1]
        ops = [Operation.model_validate(o) for o in listed]
        self._operations[id(listed)] = (listed, ops)
        return ops

    # --- nodes ----------------------------------------------------------------------

    async def analyze(self, state: DocState) -> dict[str, Any]:
        """Check the request and settle the document's type and title."""
        request = valid_request(DocRequest, state["request"])
        if request.refresh_document_id:  # the document's own request, read back
            trace = Trace("analyze")
            asked, previous = await refresh.prior(self._docs(state["request"]),
                                                  request.refresh_document_id, trace)
            # the refresh stays in its run's space, whatever the first run's was
            asked["space"] = request.space
            return trace.update(**await self.analyze({**state, "request": asked}),
                                refresh=previous)
        has_spec = request.spec_document_id or request.spec_url or request.service
        if request.doc_type == "api_documentation" and not has_spec:
            raise WorkflowError("API documentation needs a spec: name a service, a stored "
                                "spec (spec_document_id) or a spec URL")
        if request.doc_type != "api_documentation" and not (
                request.document_ids or request.search or has_spec):
            raise WorkflowError("no sources: name documents (document_ids) or a search")
        return {"request": request.model_dump()}

    async def choose_template(self, state: DocState) -> dict[str, Any]:
        """The sections a document of this type has."""
        request = state["request"]
        kind = request["doc_type"]
        if kind == "api_documentation":
            sections = ["overview", "authentication", "endpoint groups",
                        *(["error codes"] if errors_asked(request) else []),
                        "endpoint summary"]
        elif kind == "answer":
            sections = ["answer", "sources"]
        else:
            sections = ["summary", "sources"]
        return {"template": {"name": f"{kind}-default", "version": VERSION,
                             "sections": sections}}

    async def gather_context(self, state: DocState) -> dict[str, Any]:
        """The spec and the source documents, each with what identifies its version."""
        request = valid_request(DocRequest, state["request"])
        trace = Trace("gather_context")
        context: dict[str, Any] = {"sources": [], "spec": None, "operations": []}
        if request.spec_document_id or request.spec_url or request.service:
            context.update(await self._spec(request, trace))
        docs = self._docs(state["request"])
        found = [await document(docs, document_id, "source", trace)
                 for document_id in request.document_ids]
        if request.search:
            trace.called("doc-store", "search")
            found += [doc for doc in await docs.search(request.search, limit=5)
                      if doc.document_id not in request.document_ids]
        for doc in found:
            context["sources"].append({
                "document_id": doc.document_id, "version": doc.version,
                "content_hash": doc.content_hash, "title": doc.title, "role": "source",
                "excerpt": (doc.content or "")[: self.deps.settings.source_chars * 2]})
        if request.doc_type != "api_documentation" and not context["sources"] \
                and not context["operations"]:
            raise WorkflowError(f"no source documents found for {request.search!r}")
        return trace.update(context=context)

    async def check_sources(self, data: dict[str, Any]) -> None:
        """Refuse before a run starts what its first steps would fail on: an API named
        by service with no spec stored or registered. (The spec found stays cached for
        the run; a stored spec or a URL is read by the run alone, once.)"""
        service = data.get("service")
        if not service or data.get("spec_document_id") or data.get("spec_url"):
            return
        trace = Trace("check")
        try:
            if await self.specs.for_service(self._docs(data), str(service), trace) is None:
                await self.specs.registered(str(service), trace)
        except WorkflowError as exc:
            raise Invalid(f"The run cannot start: {exc}.", errors=[
                {"field": "input.service", "message": str(exc)}]) from None

    async def _spec(self, request: DocRequest, trace: Trace) -> dict[str, Any]:
        """The OpenAPI spec: stored in the doc-store, at a URL, or from the registry."""
        return await self.specs.of(request, self._docs(request.model_dump()), trace)

    async def outline(self, state: DocState) -> dict[str, Any]:
        """The sections, from the template and the sources (not from the model)."""
        kind = state["request"]["doc_type"]
        if kind != "api_documentation":
            head = "Answer" if kind == "answer" else "Summary"
            return {"outline": [{"title": head, "kind": head.lower()},
                                {"title": "Sources", "kind": "sources"}]}
        if not self.operations_of(state):
            raise WorkflowError("the spec has no operations to document")
        return {"outline": refresh.outlined(state.get("refresh"), apisections.outline(
            apisections.reference_of(state["context"]), errors_asked(state["request"])))}

    def _sources_text(self, state: DocState, ops: list[Operation]) -> str:
        """What the model is told of the sources: `ops` are the spec's operations (read
        once per step: validating them is the cost that grows with the spec)."""
        context = state["context"]
        limit = self.deps.settings.source_chars
        if context.get("operations"):
            api = context["api"]
            lines = [f"API: {api['title']} {api['version']}", api.get("description", "")]
            lines += [f"{o.method.upper()} {o.path}: {o.summary}" for o in ops]
            return "\n".join(line for line in lines if line)[:limit]
        return "\n\n".join(f"{s['title']}:\n{s['excerpt']}" for s in context["sources"])[:limit]

    async def write(self, state: DocState) -> dict[str, Any]:
        """The model's prose, all calls at once, each sentence checked against the spec
        or sources; the reference and the lead paragraph from the spec."""
        trace = Trace("write")
        request, sections, context = state["request"], state["outline"], state["context"]
        ops = self.operations_of(state)
        grouped = apidoc.groups(ops)
        calls = [self._prose_call(state, ops, grouped, s) for s in sections]
        asked = {s["title"]: c.sha256 for s, c in zip(sections, calls, strict=True) if c}
        # a refresh's sections kept as they were, and its changes: no model call for them
        kept, refreshed = await refresh.kept(self._docs(request), state.get("refresh"), context,
                                             sections, asked, self.deps.spec_bounds, trace)
        calls = [None if s["title"] in kept else c for s, c in zip(sections, calls, strict=True)]
        limit = asyncio.Semaphore(self.deps.settings.write_concurrency)

        # each call is made once its turn comes: made before, a run cancelled while
        # calls wait would leave them never awaited
        async def bounded(call: ProseCall) -> tuple[str, str]:
            async with limit:
                return await self._call(trace, state, call.prompt, call.variables,
                                        self.deps.settings.prose_tokens)

        answers = iter(await asyncio.gather(*(bounded(c) for c in calls if c is not None)))
        texts, checked_prose = checked_sections(
            sections, calls, answers, context, grouped,
            apisections.reference_of(context) if ops else None)
        bodies = [kept[s["title"]] if s["title"] in kept else self._body(state, ops, s, text)
                  for s, text in zip(sections, texts, strict=True)]
        api_title = (context.get("api") or {}).get("title", "")
        title = request.get("title") or (apidoc.document_title(api_title) if api_title
                                         else request["query"][:120])
        draft = GeneratedDocument(
            title=title, summary=lead(context),
            sections=[Section(title=s["title"], body=b) for s, b in zip(
                sections, bodies, strict=True)],
            table_columns=md.TABLE_COLUMNS if ops else ["document_id", "version", "title"],
            table_rows=md.table_rows(apisections.reference_of(state["context"])) if ops else [
                [s["document_id"], str(s["version"]), s["title"]]
                for s in context["sources"]])
        return trace.update(draft=draft.model_dump(), rounds=0, prose=checked_prose,
                            asked=asked, **refreshed)

    def _prose_call(self, state: DocState, ops: list[Operation],
                    grouped: dict[str, list[Operation]],
                    section: dict[str, Any]) -> ProseCall | None:
        """What the model is asked for a section, or None where it writes nothing."""
        kind = section["kind"]
        if kind not in PROSE_KINDS:
            return None
        if ops:
            return api_call(section, state["context"], grouped)
        if kind == "answer":
            return ProseCall("section-writing", {
                "query": asked(state["request"]), "section": section["title"],
                "outline": "\n".join(f"- {s['title']}" for s in state["outline"]),
                "sources": self._sources_text(state, ops)})
        return ProseCall("summarisation", {"sources": self._sources_text(state, ops),
                                           "max_words": 120})

    def _body(self, state: DocState, ops: list[Operation], section: dict[str, Any],
              prose: str) -> str:
        kind, context = section["kind"], state["context"]
        if ops:
            reference = apisections.body(apisections.reference_of(context), section, prose)
            if reference is not None:
                return reference
        if kind == "errors":
            return "\n\n".join(([prose] if prose else [])
                                + [apidoc.error_codes(ops)])
        if kind == "sources":
            return "\n".join(f"- {s['title'] or s['document_id']} (`{s['document_id']}`, "
                             f"version {s['version']})" for s in context["sources"])
        return prose

    async def review(self, state: DocState) -> dict[str, Any]:
        """The quality gate (`gate.py`): complete and wholly true, by code. A configured
        judge's verdict is reported beside it, never counted in it."""
        trace = Trace("review")
        draft = GeneratedDocument.model_validate(state["draft"])  # changes are history
        markdown, context = draft.markdown(), state["context"]
        ops = self.operations_of(state)
        judgement, judge = review.NO_JUDGE, self.deps.settings.judge_model
        if judge:
            try:
                judgement = review.judgement(await self._llm(trace, state, "review", {
                    "query": asked(state["request"]),
                    "outline": "\n".join(s["title"] for s in state["outline"]),
                    "sources": self._sources_text(state, ops)[:600],
                    "draft": markdown[:900]},
                    self.deps.settings.review_tokens, review.REVIEW_SCHEMA, judge))
            except ServiceError as exc:  # no answer is no judgement, not a failed run
                judgement = review.no_judgement(f"the judge did not answer: {exc}")
        prose, vocabulary = state.get("prose", []), vocabulary_of(context)
        checked = gate.api_verdict(gate.check(
            markdown, apisections.reference_of(context), vocabulary), prose) if ops \
            else gate.sources_verdict(markdown, gate.sources_cited(markdown, context[
                "sources"]), vocabulary, prose)
        return trace.update(review={**checked, "judgement": judgement})

    async def _after_review(self, state: DocState) -> str:
        # async: LangGraph runs a synchronous branch in a thread pool (a thread round trip)
        done = state["review"]["approved"] or state.get("rounds", 0) >= \
            self.deps.settings.max_revisions
        return "format" if done else "revise"

    async def revise(self, state: DocState) -> dict[str, Any]:
        """Repair the gaps the review named from the spec; the round says what changed."""
        rounds = state.get("rounds", 0) + 1
        reference = apisections.reference_of(state["context"])
        draft, changes = review.revise_draft(
            GeneratedDocument.model_validate(state["draft"]), state["review"],
            self.operations_of(state), state["outline"], lead(state["context"]),
            lambda op: apisections.operation_block(reference, op.method, op.path) or "")
        return {"draft": draft.model_dump(), "rounds": rounds,
                "revisions": [{"round": rounds, "changes": changes}]}

    async def format(self, state: DocState) -> dict[str, Any]:
        """The final document and its provenance, from what ran."""
        request, checked = state["request"], state["review"]
        context = state["context"]
        keys = ("document_id", "version", "content_hash", "title", "role")
        lineage: dict[str, Any] = {
            "sources": [{k: s[k] for k in keys} for s in context["sources"]],
            "spec": context.get("spec")}
        if context.get("spec") and context["spec"].get("document_id"):
            spec = context["spec"]
            lineage["sources"].insert(0, {
                "document_id": spec["document_id"], "version": spec["document_version"],
                "content_hash": spec["content_hash"], "title": spec["title"],
                "role": "openapi_spec"})
        if request["doc_type"] == "api_documentation":  # what each section was written from
            lineage["sections"] = apisections.fragments(apisections.reference_of(context),
                                                        state["outline"], state.get("asked"))
        if state.get("refresh"):  # which sections were reused, both specs
            lineage["sections"], lineage["refresh"] = refresh.lineage(
                state["refresh"], lineage["sections"], context.get("spec"))
        provenance = provenance_of_run(state, NAME, VERSION, template=state["template"])
        provenance["user_context"].update(
            {k: request[k] for k in ("instructions", "follow_up") if request.get(k)})
        provenance |= {
            "prompts_used": state.get("prompts_used", []),
            "llm_calls": state.get("llm_calls", []),
            "data_lineage": lineage,
            "quality_metrics": {
                **{k: checked[k] for k in ("completeness", "truthfulness",
                                           "prose_acceptance", "approved", "judgement",
                                           "claims", "unsupported")},
                "revision_rounds": state.get("rounds", 0),
                "revisions": state.get("revisions", []), "items_checked": checked["items"],
                "missing": checked["missing"], "invented": checked["invented"],
                "endpoints": len(context.get("operations", []))},
            "prose": state.get("prose", [])}
        final = GeneratedDocument.model_validate(state["draft"])
        final.metadata = {"run_id": state["run_id"], "workflow": NAME,
                          "doc_type": request["doc_type"]}
        return {"final": final.model_dump(), "provenance": provenance}

    async def store(self, state: DocState) -> dict[str, Any]:
        """Render and store once: a resumed run finds the document of its first try."""
        run_id, request = state["run_id"], state["request"]
        await self.deps.storing(run_id)
        fmt = request["format"]
        doc = GeneratedDocument.model_validate(state["final"])
        provenance = state["provenance"]
        rendered = render(doc, fmt, provenance=provenance)
        source_ids = [s["document_id"] for s in provenance["data_lineage"]["sources"]]
        fields: dict[str, Any] = {
            "title": doc.title, "format": fmt, "provenance": provenance,
            "source": f"orchestrator:{NAME}", "author": state["user_id"],
            "space": request.get("space") or DEFAULT_SPACE,
            # the query is in the provenance, where a key ring seals it
            "metadata": {"run_id": run_id, "workflow": NAME,
                         "doc_type": request["doc_type"], "filename": rendered.filename},
            "tags": ["generated", request["doc_type"]],
            "relations": [{"type": "derived_from", "target_id": i} for i in source_ids]}
        stored: DocumentSummary
        if state.get("refresh"):  # the next version of the same document
            stored = await refresh.store(self.deps.docs, state["refresh"], run_id, rendered, **{
                k: fields[k] for k in ("title", "format", "provenance", "relations")})
        elif not self.deps.first_attempt(run_id) and (existing := (await self.deps.docs.list(
                **{"metadata.run_id": run_id, "limit": 1})).items):
            stored = existing[0]
        elif fmt in ("pdf", "zip"):
            stored = await self.deps.docs.upload(rendered.content, rendered.filename,
                                                 content_type=rendered.media_type,
                                                 idempotency_key=f"run:{run_id}",
                                                 dedupe=False, **fields)
        else:
            stored = await self.deps.docs.put(rendered.content.decode(), dedupe=False,
                                              idempotency_key=f"run:{run_id}", **fields)
        result = {"document_id": stored.document_id, "version": stored.version,
                  "filename": rendered.filename, "format": fmt,
                  "media_type": rendered.media_type, "title": doc.title,
                  "content_hash": stored.content_hash, "size": stored.size,
                  "quality": provenance["quality_metrics"]}
        # announced with the run's end, by the replica that records it (one event)
        generated = make_event(
            "orchestrator", "llmdocs.document.generated",
            {"document_id": stored.document_id, "version": stored.version,
             "run_id": run_id, "format": fmt,
             "title": doc.title, "sources": source_ids, "space": stored.space},
            subject=stored.document_id, space=stored.space)
        return {"result": result, "announce": [generated.model_dump(mode="json")]}

    # --- the graph ------------------------------------------------------------------

    def graph(self) -> StateGraph[DocState, Any, DocState, DocState]:
        graph: StateGraph[DocState, Any, DocState, DocState] = StateGraph(DocState)
        for name in STEPS:
            graph.add_node(name, self._step(name, getattr(self, name)))
        graph.add_edge(START, "analyze")
        graph.add_edge("analyze", "choose_template")
        graph.add_edge("analyze", "gather_context")
        graph.add_edge(["choose_template", "gather_context"], "outline")
        graph.add_edge("outline", "write")
        graph.add_edge("write", "review")
        graph.add_conditional_edges("review", self._after_review,
                                    {"revise": "revise", "format": "format"})
        graph.add_edge("revise", "review")
        graph.add_edge("format", "store")
        graph.add_edge("store", END)
        return graph


