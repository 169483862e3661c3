"""The model's prose, kept to what a reference cannot say and checked sentence by
sentence; whatever the check leaves empty is said plainly from the spec instead."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from llmdocs.claims import CheckContext, Repeats, SpecIndex, Vocabulary, check_prose
from llmdocs.openapi import Operation, spec_hash
from llmdocs.openapi import markdown as md
from llmdocs.openapi.reference import Reference
from llmdocs.services.orchestrator import apidoc

# the sections the model writes, by kind: an API's overview, getting started and group
# introductions, a non-API document's answer or summary
PROSE_KINDS = ("overview", "getting_started", "group", "answer", "summary")


def spec_facts(doc: dict[str, Any]) -> dict[str, Any]:
    """What the prose and its check need of a parsed spec: what it may claim, its
    tags' descriptions and how each security scheme is sent."""
    tags = {str(t["name"]): str(t.get("description") or "") for t in doc.get("tags") or []
            if isinstance(t, dict) and t.get("name")}
    schemes = (doc.get("components") or {}).get("securitySchemes") or {}
    auth = [f"`{name}`: {_how_to_send(scheme)}" for name, scheme in schemes.items()
            if isinstance(scheme, dict)] if isinstance(schemes, dict) else []
    return {"vocabulary": Vocabulary.from_openapi(doc).to_json(), "tags": tags, "auth": auth}


def _how_to_send(scheme: dict[str, Any]) -> str:
    kind = scheme.get("type")
    if kind == "apiKey":
        return f"send the key in the `{scheme.get('name')}` {scheme.get('in', 'header')}"
    if kind == "http" and str(scheme.get("scheme", "")).lower() == "basic":
        return "send the `Authorization: Basic <credentials>` header"
    if kind in ("http", "oauth2", "openIdConnect"):
        return "send the `Authorization: Bearer <token>` header"
    return f"a `{kind}` scheme"


def vocabulary_of(context: dict[str, Any]) -> Vocabulary:
    """What the document may claim: the spec's vocabulary, or for a spec known only by
    its operations (the registry's) or for source documents, one built from them."""
    facts = context.get("prose") or {}
    if facts.get("vocabulary"):
        return Vocabulary.from_json(facts["vocabulary"])
    if context.get("operations"):
        paths: dict[str, dict[str, Any]] = {}
        for op in context["operations"]:
            paths.setdefault(op["path"], {})[op["method"]] = {**op, "tags": [op["tag"]]}
        return Vocabulary.from_openapi({"info": context.get("api") or {}, "paths": paths})
    return Vocabulary.from_texts([f"{s['title']}\n{s['excerpt']}"
                                  for s in context["sources"]])


@dataclass(frozen=True)
class ProseCall:
    """The prompt a section's prose is asked with."""

    prompt: str
    variables: dict[str, Any]

    @property
    def sha256(self) -> str:
        """What the model is asked, hashed: a refresh asks again only when it differs."""
        return spec_hash({"prompt": self.prompt, "variables": self.variables})


def _first_get(ops: list[Operation]) -> Operation | None:
    """The first GET without a path parameter (a call that needs no id), else any GET."""
    gets = [op for op in ops if op.method == "get"]
    return next((op for op in gets if "{" not in op.path), gets[0] if gets else None)


def _call_line(op: Operation) -> str:
    return f"{op.method.upper()} {op.path}: {op.summary}".rstrip(": ")


def api_call(section: dict[str, Any], context: dict[str, Any],
             grouped: dict[str, list[Operation]]) -> ProseCall | None:
    """The prompt for an API document's prose section, or None for a section the
    reference fills alone (authentication, errors, schemas, the summary table)."""
    api, facts = context["api"], context.get("prose") or {}
    servers = [u for u in (facts.get("vocabulary") or {}).get("servers") or [] if u]
    server = servers[0] if servers else "(not stated)"
    kind = section["kind"]
    if kind == "overview":
        tags = facts.get("tags") or {}
        return ProseCall("api-overview", {
            "title": api["title"], "version": api["version"],
            "description": api.get("description") or "(none)", "server": server,
            "tags": "; ".join(f"{t}: {tags.get(t, '')}".rstrip(": ") for t in grouped)})
    if kind == "getting_started":
        first = _first_get([op for ops in grouped.values() for op in ops])
        return ProseCall("api-getting-started", {
            "title": api["title"], "server": server,
            "auth": "; ".join(facts.get("auth") or []) or "none",
            "first_call": _call_line(first) if first else "(no GET operation)"})
    if kind == "group" and section.get("tag") in grouped:
        tag = section["tag"]
        return ProseCall("api-group-intro", {
            "title": api["title"], "tag": tag,
            "tag_description": (facts.get("tags") or {}).get(tag, ""),
            "operations": "\n".join(_call_line(op) for op in grouped[tag])})
    return None


def fallback(section: dict[str, Any], context: dict[str, Any],
             grouped: dict[str, list[Operation]]) -> str:
    """Plain prose from the spec (or the sources) for a section the model left empty."""
    kind, api = section["kind"], context.get("api")
    if not api:
        return sources_line(context)
    facts = context.get("prose") or {}
    if kind == "group":
        tag = section.get("tag", "")
        if (facts.get("tags") or {}).get(tag, "").strip():
            return ""  # the section opens with the tag's own description already
        # each operation's summary follows in the section: say only what the group is
        count = len(grouped.get(tag, []))
        return (f"The {md.title_case(tag)} group has {count} "
                f"operation{'s' if count != 1 else ''}.")
    if kind == "getting_started":
        # the reference part of the section says where requests go, with a curl line
        first = _first_get([op for ops in grouped.values() for op in ops])
        lines = [*(f"Authenticate with {how}." for how in facts.get("auth") or []),
                 f"A first call: `{first.method.upper()} {first.path}` "
                 f"({first.summary or first.operation_id})." if first else ""]
        return " ".join(filter(None, lines))
    # the overview's reference part shows the description and base URLs whole
    groups = ", ".join(md.title_case(tag) for tag in grouped)
    return (f"Its operations come in {len(grouped)} group{'s' if len(grouped) != 1 else ''}"
            f": {groups}.")


def lead(context: dict[str, Any]) -> str:
    """The document's lead paragraph: the API's title, version and size; for other
    documents, its sources."""
    api = context.get("api")
    if not api:
        return sources_line(context)
    ops = len(context.get("operations", []))
    # the overview shows the API's own description whole, just below
    return f"{api['title']} (version {api['version']}) has {ops} documented endpoints."


def sources_line(context: dict[str, Any]) -> str:
    titles = ", ".join(s["title"] or s["document_id"] for s in context["sources"])
    return f"Drawn from {len(context['sources'])} source documents: {titles}."


def checked_sections(sections: list[dict[str, Any]], calls: list[ProseCall | None],
                     answers: Iterator[tuple[str, str]], context: dict[str, Any],
                     grouped: dict[str, list[Operation]], reference: Reference | None
                     ) -> tuple[list[str], list[dict[str, Any]]]:
    """Each section's prose (`answers` are the model's, with the prompt as rendered, for
    the sections with a call), checked in the outline's order so a repeat of an earlier
    section is caught, and as the gate checks what it says of an operation; and per
    section, what was written, kept, dropped and why."""
    vocabulary, repeats = vocabulary_of(context), Repeats()
    spec = SpecIndex(reference) if reference is not None else None
    repeats.add_text(lead(context))  # the model's prose does not say it again
    labels = [s["title"] for s in sections]
    texts, records = [], []
    for section, call in zip(sections, calls, strict=True):
        if call is None:
            texts.append("")
            continue
        answer, prompt = next(answers)
        checked = check_prose(answer, vocabulary, CheckContext.of_prompt(
            prompt, call.variables, labels, spec), repeats)
        texts.append(checked.text or fallback(section, context, grouped))
        records.append({"section": section["title"], "written": checked.written,
                        "kept": len(checked.kept),
                        "dropped": [d.to_json() for d in checked.dropped],
                        "fallback": not checked.kept})
    return texts, records


def errors_asked(request: dict[str, Any]) -> bool:
    """Whether the request or a follow-up's instructions ask for the error codes."""
    return any(apidoc.ERRORS_ASKED.search(text)
               for text in (request["query"], *request.get("instructions", [])))


def asked(request: dict[str, Any]) -> str:
    """The request as the model reads it: with what follow-ups added."""
    return "\n".join([request["query"],
                      *(f"Also: {i}" for i in request.get("instructions", []))])

