"""A generated API document written again as its next version: its request read back
from its provenance, each section whose spec fragments did not change kept word for word
(no model call), and a section that says what changed in the spec, breaking first."""

from __future__ import annotations

import json
import re
from typing import Any

from llmdocs.claims import CHANGES
from llmdocs.core.client import NotFound, PreconditionFailed
from llmdocs.formats import GeneratedDocument, Rendered
from llmdocs.openapi import SpecBounds, SpecError, parse_spec
from llmdocs.openapi.diff import diff
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.docstore.schemas import StoredDocument
from llmdocs.services.orchestrator import apidoc, apisections
from llmdocs.services.orchestrator.spacedocs import SpaceDocs
from llmdocs.services.orchestrator.workflow_state import Trace, WorkflowError

_HEADING = re.compile(r"^## (.+)$")
# the request fields a refresh takes from the document's user context
_ASKED = ("query", "intent", "entities", "session_id", "instructions")


async def prior(docs: SpaceDocs, document_id: str, trace: Trace
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The document's own request, rebuilt from its latest version's provenance, and what
    the refresh keeps of that version: its number, sections, their text and its spec."""
    trace.called("doc-store", "get document")
    try:
        doc = await docs.get(document_id)
    except NotFound:
        raise WorkflowError(f"document {document_id} not found") from None
    provenance = doc.provenance or {}
    lineage = provenance.get("data_lineage") or {}
    spec = lineage.get("spec") or {}
    asked = provenance.get("user_context") or {}
    if doc.metadata.get("doc_type") != "api_documentation" or not spec.get("origin") \
            or not asked.get("query"):
        raise WorkflowError(f"document {document_id} is not API documentation generated "
                            "from a spec: only such a document can be refreshed")
    origin = spec["origin"]
    source = ({"spec_document_id": spec.get("document_id")} if origin == "doc-store" else
              {"spec_url": spec.get("url")} if origin == "url" else
              {"service": spec.get("service")})
    # a title the document was given is kept; one made from the API's title is made anew
    given = doc.title != apidoc.document_title(str(spec.get("title") or ""))
    request = {**{k: asked[k] for k in _ASKED if asked.get(k) is not None}, **source,
               "format": doc.format, "doc_type": "api_documentation",
               "title": doc.title if given else None}
    return request, {"document_id": document_id, "version": doc.version,
                     "format": doc.format, "spec": spec,
                     "sections": lineage.get("sections") or [],
                     "texts": texts_of(doc.content or "", doc.format)}


def texts_of(content: str, fmt: str) -> dict[str, str]:
    """Each section's body by title, as the stored document shows it: a JSON document
    keeps its sections, a Markdown one is cut at its `## ` headings (outside code); a
    format that keeps no Markdown (txt, csv, pdf, zip) has nothing to reuse."""
    if fmt == "json":
        try:
            doc = GeneratedDocument.model_validate(json.loads(content))
        except ValueError:
            return {}
        return {s.title: s.body.strip() for s in doc.sections}
    if fmt != "markdown":
        return {}
    texts: dict[str, list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in content.splitlines():
        heading = None if fenced else _HEADING.match(line)
        if line.strip().startswith(("```", "~~~")):
            fenced = not fenced
        if heading is not None:
            current = texts.setdefault(heading.group(1).strip(), [])
        elif current is not None:
            current.append(line)
    return {title: "\n".join(lines).strip() for title, lines in texts.items()}


def outlined(previous: dict[str, Any] | None, outline: list[dict[str, Any]]
             ) -> list[dict[str, Any]]:
    """The new spec's outline, for a refresh with the section of changes first."""
    if previous is None:
        return outline
    return [{"title": f"{CHANGES} {previous['version']}", "kind": "changes"}, *outline]


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return all(old.get(k) == new[k] for k in ("kind", "sha256", "operations", "asked_sha256"))


async def kept(docs: SpaceDocs, previous: dict[str, Any] | None,
               context: dict[str, Any], outline: list[dict[str, Any]], asked: dict[str, str],
               bounds: SpecBounds, trace: Trace) -> tuple[dict[str, str], dict[str, Any]]:
    """A refresh's texts known without a model, by section title: the earlier text of
    each section whose facts, operations and prose prompt (`asked`) hash as before, and
    the changes; with the state's refresh record completed by them. Nothing for a run
    that is no refresh."""
    if previous is None:
        return {}, {}
    fresh = apisections.fragments(apisections.reference_of(context), outline, asked)
    old, texts = {s["title"]: s for s in previous["sections"]}, previous["texts"]
    reused = {f["title"]: texts[f["title"]] for f in fresh
              if f["title"] in old and f["title"] in texts and _same(old[f["title"]], f)}
    found = await changes(docs, previous, context.get("spec") or {}, fresh, bounds, trace)
    return ({**reused, f"{CHANGES} {previous['version']}": changes_body(found)},
            {"refresh": {**previous, "changes": found, "reused": list(reused)}})


async def changes(docs: SpaceDocs, previous: dict[str, Any], head: dict[str, Any],
                  fresh: list[dict[str, Any]], bounds: SpecBounds, trace: Trace
                  ) -> list[dict[str, Any]]:
    """What changed in the spec, breaking first: between both versions of a stored spec,
    by the API diff; for a spec at a URL or in the registry, whose earlier version is not
    kept, from the fragment hashes of both versions."""
    base = previous["spec"]
    if not (base.get("origin") == head.get("origin") == "doc-store"
            and base.get("document_id") == head.get("document_id")):
        return _hashed(previous, fresh)
    if base.get("document_version") == head.get("document_version"):
        return []  # the same version of the same stored spec
    spec_id = str(base["document_id"])
    was = await _spec_version(docs, spec_id, base["document_version"], bounds, trace)
    now = await _spec_version(docs, spec_id, head["document_version"], bounds, trace)
    try:
        found = diff(was, now, bounds).ordered()
    except SpecError as exc:
        raise WorkflowError(f"the spec's versions cannot be compared: {exc}") from None
    return [c.model_dump(include={"kind", "operation", "breaking", "message"})
            for c in found]


async def _spec_version(docs: SpaceDocs, document_id: str, version: int,
                        bounds: SpecBounds, trace: Trace) -> dict[str, Any]:
    trace.called("doc-store", f"get document version {version}")
    try:
        stored = await docs.get(document_id, version)
        return parse_spec((stored.content or "").encode(), bounds)
    except NotFound:
        raise WorkflowError(f"version {version} of spec {document_id} is gone: the "
                            "changes since it cannot be listed") from None
    except SpecError as exc:
        raise WorkflowError(f"version {version} of spec {document_id}: {exc}") from None


def _hashed(previous: dict[str, Any], fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What changed by the fragment hashes: operations removed (breaking), added, or
    changed, and the sections outside operations that changed."""
    def operations(sections: list[dict[str, Any]]) -> dict[str, str]:
        return {o["operation"]: o["sha256"] for s in sections if s["kind"] == "group"
                for o in s["operations"]}

    before, after = operations(previous["sections"]), operations(fresh)
    found = [{"kind": "operation.removed", "operation": op, "breaking": True,
              "message": f"{op} was removed"} for op in before if op not in after]
    found += [{"kind": "operation.added", "operation": op, "breaking": False,
               "message": f"{op} was added"} for op in after if op not in before]
    found += [{"kind": "operation.changed", "operation": op, "breaking": False,
               "message": f"{op} changed (see its section)"}
              for op in after if op in before and before[op] != after[op]]
    old = {s["title"]: s for s in previous["sections"]}
    found += [{"kind": f"{s['kind']}.changed", "operation": None, "breaking": False,
               "message": f"What the spec says for {s['title']} changed"}
              for s in fresh if s["kind"] in ("overview", "authentication", "schemas")
              and s["title"] in old and old[s["title"]]["sha256"] != s["sha256"]]
    return sorted(found, key=lambda c: not c["breaking"])


def changes_body(found: list[dict[str, Any]]) -> str:
    """The changes in plain words, breaking ones first."""
    if not found:
        return "Nothing the document shows changed in the spec."
    breaking = sum(c["breaking"] for c in found)
    lines = [f"{breaking} breaking change{'s' if breaking != 1 else ''} and "
             f"{len(found) - breaking} other{'s' if len(found) - breaking != 1 else ''}.", ""]
    lines += [f"- {'**Breaking:** ' if c['breaking'] else ''}{said(c)}." for c in found]
    return "\n".join(lines)


def said(change: dict[str, Any]) -> str:
    """A change in words, naming its operation unless its message does."""
    op, message = change["operation"], change["message"]
    return message if op is None or message.startswith(op) else f"{op}: {message}"


def lineage(refreshed: dict[str, Any], sections: list[dict[str, Any]],
            spec: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The sections' provenance marked reused or not, and the refresh's own record:
    the version it follows, both specs, what was reused, written anew and dropped."""
    reused = set(refreshed["reused"])
    marked = [{**s, "reused": s["title"] in reused} for s in sections]
    now = {s["title"] for s in sections}
    found = refreshed["changes"]
    return marked, {
        "document_id": refreshed["document_id"], "previous_version": refreshed["version"],
        "base_spec": refreshed["spec"], "head_spec": spec,
        "reused": [s["title"] for s in sections if s["title"] in reused],
        "regenerated": [s["title"] for s in sections if s["title"] not in reused],
        "removed": [s["title"] for s in refreshed["sections"] if s["title"] not in now],
        "changes": found,
        "summary": {"breaking": sum(c["breaking"] for c in found),
                    "non_breaking": sum(not c["breaking"] for c in found)}}


async def store(docs: DocStoreClient, refreshed: dict[str, Any], run_id: str,
                rendered: Rendered, **fields: Any) -> StoredDocument:
    """The next version of the document: refused when another was stored since the one
    this refresh read (nothing is stored then); a resumed run's retry is answered with
    the version its first try stored."""
    text = rendered.media_type.startswith(("text/", "application/json"))
    try:
        return await docs.update(
            refreshed["document_id"], rendered.content.decode() if text else rendered.content,
            if_version=refreshed["version"], idempotency_key=f"run:{run_id}",
            filename=rendered.filename, content_type=rendered.media_type, **fields)
    except PreconditionFailed:
        raise WorkflowError(f"document {refreshed['document_id']} has a version newer "
                            f"than {refreshed['version']}, stored while this refresh "
                            "ran: refresh it again") from None
