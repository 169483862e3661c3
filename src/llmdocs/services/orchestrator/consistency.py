"""The consistency-check workflow (analyze → gather → compare → store): a stored document
measured against its spec with the review's own check, so the verdict needs no model."""

from __future__ import annotations

import itertools
import json
from typing import Any

from langgraph.graph import END, START, StateGraph

from llmdocs.core.client import NotFound
from llmdocs.formats import GeneratedDocument, Section
from llmdocs.services.orchestrator import apidoc
from llmdocs.services.orchestrator.docgen import DocGen
from llmdocs.services.orchestrator.schemas import DocRequest, EntityId, WorkflowInput
from llmdocs.services.orchestrator.workflow_state import (
    DocState,
    Trace,
    WorkflowError,
    provenance_of_run,
    valid_request,
)

NAME = "consistency-check"
VERSION = "1"
STEPS = ["analyze", "gather", "compare", "store"]
TEXT_FORMATS = ("markdown", "txt", "json", "csv")
FINDING_COLUMNS = ["finding", "endpoint", "detail"]


class ConsistencyRequest(WorkflowInput):
    """Which document to check, against which spec."""

    document_id: EntityId | None = None


def _text_of(content: str, fmt: str) -> str:
    """The documentation text of a stored document (a generated JSON document keeps its
    Markdown under `markdown`)."""
    if fmt == "json":
        try:
            body = json.loads(content)
        except ValueError:
            return content
        markdown = body.get("markdown") if isinstance(body, dict) else None
        if isinstance(markdown, str):
            return markdown
    return content


def _split(item: str) -> tuple[str, str]:
    endpoint, _, detail = item.partition(": ")
    return endpoint, detail


class ConsistencyCheck(DocGen):
    """The nodes; the spec lookup, step timing and storing are the document workflow's."""

    NAME, VERSION, STEPS = NAME, VERSION, STEPS
    DESCRIPTION = ("A stored document measured against its OpenAPI spec (endpoints, "
                   "parameters and response codes missing or invented), the findings "
                   "stored as a report: analyze → gather → compare → store.")
    REQUEST = ConsistencyRequest

    async def analyze(self, state: DocState) -> dict[str, Any]:
        request = valid_request(ConsistencyRequest, state["request"])
        if not (request.spec_document_id or request.spec_url or request.service):
            raise WorkflowError("a consistency check needs a spec: name a service, a stored "
                                "spec (spec_document_id) or a spec URL")
        return {"request": {**request.model_dump(), "doc_type": "consistency_report"}}

    async def gather(self, state: DocState) -> dict[str, Any]:
        """The spec, and the document: the one named, else the newest generated API
        documentation of that API."""
        request = state["request"]
        trace = Trace("gather")
        context = await self._spec(valid_request(DocRequest, {
            k: request[k] for k in ("query", "service", "spec_document_id", "spec_url",
                                    "space")}),
            trace)
        document_id = request["document_id"]
        if document_id is None:
            trace.called("doc-store", "list documents tag=api_documentation")
            page = await self._docs(request).list(tag="api_documentation", sort="-updated_at",
                                             limit=50)
            title = apidoc.document_title(context["api"]["title"])
            found = next((d for d in page.items if d.title == title
                          and d.format in TEXT_FORMATS), None)
            if found is None:
                raise WorkflowError(f"no stored document titled {title!r} to check: name "
                                    "one (document_ids)")
            document_id = found.document_id
        trace.called("doc-store", "get document")
        try:
            doc = await self._docs(request).get(document_id)
        except NotFound:
            raise WorkflowError(f"document {document_id} not found") from None
        if doc.format not in TEXT_FORMATS or doc.content is None:
            raise WorkflowError(f"document {document_id} is {doc.format}: only text "
                                f"documents ({', '.join(TEXT_FORMATS)}) can be checked")
        context["sources"] = [{
            "document_id": doc.document_id, "version": doc.version,
            "content_hash": doc.content_hash, "title": doc.title, "role": "checked",
            "excerpt": _text_of(doc.content, doc.format)}]
        return trace.update(context=context)

    async def compare(self, state: DocState) -> dict[str, Any]:
        """The findings, as a report document and its provenance."""
        context = state["context"]
        checked, api = context["sources"][0], context["api"]
        coverage = apidoc.check(checked["excerpt"], self.operations_of(state))
        consistent = coverage.complete
        verdict = "consistent with" if consistent else "not consistent with"
        summary = (f"{checked['title']} (version {checked['version']}) is {verdict} "
                   f"{api['title']} {api['version']}: {coverage.covered} of {coverage.total} "
                   f"endpoints, parameters and response codes documented, "
                   f"{len(coverage.missing)} missing, {len(coverage.invented)} invented.")
        rows = [["missing", *_split(m)] for m in coverage.missing] + [
            ["invented", i, "not in the spec"] for i in coverage.invented]
        report = GeneratedDocument(
            title=f"Consistency of {checked['title']} with {api['title']} {api['version']}",
            summary=summary,
            sections=[
                Section(title="Missing from the document", body="\n".join(
                    f"- {m}" for m in coverage.missing) or "Nothing is missing."),
                Section(title="Not in the spec", body="\n".join(
                    f"- `{i}`" for i in coverage.invented) or "Nothing is invented."),
            ],
            table_columns=FINDING_COLUMNS, table_rows=rows,
            metadata={"run_id": state["run_id"], "workflow": NAME,
                      "doc_type": "consistency_report"})
        spec = context["spec"]
        sources = [{k: checked[k] for k in ("document_id", "version", "content_hash",
                                            "title", "role")}]
        if spec.get("document_id"):
            sources.append({"document_id": spec["document_id"],
                            "version": spec["document_version"],
                            "content_hash": spec["content_hash"], "title": spec["title"],
                            "role": "openapi_spec"})
        provenance = provenance_of_run(state, NAME, VERSION) | {
            "prompts_used": [], "llm_calls": [],
            "data_lineage": {"sources": sources, "spec": spec},
            "quality_metrics": {
                "consistent": consistent, "coverage": round(coverage.ratio, 4),
                "items_checked": coverage.total, "missing": coverage.missing,
                "invented": coverage.invented, "endpoints": len(context["operations"])}}
        return {"final": report.model_dump(), "provenance": provenance}

    def graph(self) -> StateGraph[DocState, Any, DocState, DocState]:
        graph: StateGraph[DocState, Any, DocState, DocState] = StateGraph(DocState)
        for name in STEPS:
            graph.add_node(name, self._step(name, getattr(self, name)))
        graph.add_edge(START, "analyze")
        for before, after in itertools.pairwise(STEPS):
            graph.add_edge(before, after)
        graph.add_edge("store", END)
        return graph
