"""The reference sections of an API document, placed by the workflow: what the spec's
context keeps, the outline, and each section's body from the spec's `Reference`."""

from __future__ import annotations

import hashlib
from typing import Any

from cachetools import LRUCache

from llmdocs.openapi import Analysis, Operation, SpecBounds, spec_hash
from llmdocs.openapi import markdown as md
from llmdocs.openapi.reference import Reference, build_reference, reference_of_operations
from llmdocs.services.orchestrator.prose import spec_facts

SHA256_OF = {"url": "the bytes served at its url",
             "doc-store": "the bytes the doc-store stores and serves (its content_hash)",
             "registry": "none kept: the registry keeps the canonical hash only"}

# by the id of a context's reference JSON: the JSON and the same validated; a few specs'
# worth (a large spec's reference is megabytes), see `reference_of`
_references: LRUCache[int, tuple[dict[str, Any], Reference]] = LRUCache(maxsize=16)


def spec_context(doc: dict[str, Any], analysis: Analysis, origin: str, url: str,
                 sha256: str | None, bounds: SpecBounds) -> dict[str, Any]:
    """What the workflow keeps of a parsed spec: its operations, its reference, what its
    prose may claim, the API's headline and where the spec came from: `sha256` is of its
    bytes as fetched (what `sha256sum` says), `canonical_sha256` of its parsed content."""
    reference = build_reference(doc, bounds)
    return _context(analysis.operations, reference, {
        "origin": origin, "url": url, "sha256": sha256, "sha256_of": SHA256_OF[origin],
        "canonical_sha256": analysis.spec_hash, "title": analysis.title,
        "version": analysis.version}) | {"prose": spec_facts(doc)}


def registry_context(title: str, version: str, operations: list[Operation],
                     spec: dict[str, Any], bounds: SpecBounds) -> dict[str, Any]:
    """The same from a registered service's operations alone (a reduced reference)."""
    return _context(operations, reference_of_operations(title, version, operations, bounds),
                    spec)


def _context(operations: list[Operation], reference: Reference,
             spec: dict[str, Any]) -> dict[str, Any]:
    return {"operations": [o.model_dump(by_alias=True) for o in operations],
            "reference": reference.model_dump(mode="json"),
            "api": {"title": reference.title, "version": reference.version,
                    "description": reference.description,
                    "security": sorted(s.name for s in reference.security_schemes)},
            "spec": spec}


def reference_of(context: dict[str, Any]) -> Reference:
    """The context's reference, validated once per JSON object, not once per step. A
    run checkpointed before contexts kept one gets one made from its operations."""
    if "reference" not in context:
        api = context.get("api") or {}
        return reference_of_operations(
            str(api.get("title", "")), str(api.get("version", "")),
            [Operation.model_validate(o) for o in context.get("operations", [])],
            SpecBounds())
    raw = context["reference"]
    cached = _references.get(id(raw))
    if cached is not None and cached[0] is raw:
        return cached[1]
    reference = Reference.model_validate(raw)
    _references[id(raw)] = (raw, reference)
    return reference


def outline(reference: Reference, errors: bool) -> list[dict[str, Any]]:
    """Overview, getting started, authentication (if any), a group per tag, schemas
    (if any), error codes (when asked) and the endpoint summary."""
    sections: list[dict[str, Any]] = [{"title": "Overview", "kind": "overview"},
                                      {"title": "Getting started", "kind": "getting_started"}]
    if reference.security_schemes:
        sections.append({"title": "Authentication", "kind": "authentication"})
    sections += [{"title": md.title_case(t.name), "kind": "group", "tag": t.name}
                 for t in reference.tags]
    if reference.schemas:
        sections.append({"title": "Schemas", "kind": "schemas"})
    if errors:
        sections.append({"title": "Error codes", "kind": "errors"})
    sections.append({"title": "Endpoint summary", "kind": "summary_table"})
    return sections


def body(reference: Reference, section: dict[str, Any], prose: str) -> str | None:
    """A reference section's body, the model's prose first; None for another kind."""
    kind = section["kind"]
    facts = {"overview": lambda: md.overview(reference),
             "getting_started": lambda: md.getting_started(reference),
             "authentication": lambda: md.authentication(reference),
             "schemas": lambda: md.schemas(reference),
             "summary_table": lambda: md.summary_table(reference)}
    if kind == "group":
        parts = [md.tag_description(reference, section["tag"]), prose,
                 *md.group(reference, section["tag"])]
    elif kind in facts:
        parts = [prose, facts[kind]()]
    else:
        return None
    return "\n\n".join(part for part in parts if part.strip())


def operation_block(reference: Reference, method: str, path: str) -> str | None:
    """One operation's block, the same as in a first draft (for a repair)."""
    op = next((o for o in reference.operations if (o.method, o.path) == (method, path)),
              None)
    return md.operation_block(op, reference) if op is not None else None


def fragments(reference: Reference, outline: list[dict[str, Any]],
              asked: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Per section, the spec it was written from: each operation it documents with the
    hash of its resolved fragment, one hash of the facts the section shows (its body
    without prose) and of what its prose was asked with (`asked`, by title; None for no
    prose). A later spec whose hashes for a section differ changes that section."""
    every = [(op, f"{op.method.upper()} {op.path}") for op in reference.operations]
    found = []
    for section in outline:
        facts = body(reference, section, "")
        if facts is None:
            continue
        shown = ([pair for pair in every if pair[0].tag == section["tag"]]
                 if section["kind"] == "group" else
                 every if section["kind"] in ("authentication", "summary_table") else [])
        found.append({"title": section["title"], "kind": section["kind"],
                      "sha256": hashlib.sha256(facts.encode()).hexdigest(),
                      "asked_sha256": (asked or {}).get(section["title"]),
                      "operations": [{"operation": name,
                                      "sha256": spec_hash(op.model_dump(mode="json"))}
                                     for op, name in shown]})
    return found
