"""The review's judge and the revision rounds: a judge's score is reported only when it
answered in the expected form, and each round says what it changed and why. No I/O."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from llmdocs.formats import GeneratedDocument, Section
from llmdocs.openapi import Operation
from llmdocs.openapi import markdown as md
from llmdocs.services.orchestrator import apidoc

REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["score", "approved", "gaps"],
    "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 10},
                   "approved": {"type": "boolean"},
                   "gaps": {"type": "array", "items": {"type": "string"}}}}
_REVIEW = jsonschema.Draft202012Validator(REVIEW_SCHEMA)
NO_JUDGE: dict[str, Any] = {"status": "none", "reason": "no judge configured"}


def no_judgement(reason: str) -> dict[str, Any]:
    return {"status": "no judgement", "reason": reason[:300]}


def judgement(answer: str) -> dict[str, Any]:
    """The judge's answer as a score (0-1) and gaps, or "no judgement" with the reason
    when it is not in the form REVIEW_SCHEMA asks for: never a 0, never a pass."""
    try:
        data = json.loads(answer)
    except ValueError:
        return no_judgement(f"unparseable answer: {answer[:200]!r}")
    error = next(iter(_REVIEW.iter_errors(data)), None)
    if error is not None:
        return no_judgement(f"unparseable answer: {error.message[:200]}")
    return {"status": "judged", "score": data["score"] / 10, "approved": data["approved"],
            "gaps": data["gaps"]}


def revise_draft(draft: GeneratedDocument, review: dict[str, Any], ops: list[Operation],
                 outline: list[dict[str, Any]], fallback: str,
                 block_of: Callable[[Operation], str]
                 ) -> tuple[GeneratedDocument, list[dict[str, str]]]:
    """Repair the gaps the review named, deterministically, and say what changed: the
    spec's reference goes back for every endpoint with something missing, prose naming
    an endpoint the spec lacks goes, and prose left empty (the summary is often one
    sentence) becomes `fallback`, built from the spec, so no section is lost."""
    invented: list[str] = review["invented"]
    changes: list[dict[str, str]] = []
    why_invented = f"names endpoints the spec lacks: {', '.join(invented)}"

    def stripped(where: str, before: str, after: str) -> str:
        if after == before:
            return before
        if after.strip():
            changes.append({"section": where, "what": "dropped the sentences naming "
                            "endpoints the spec lacks", "why": why_invented})
            return after
        changes.append({"section": where, "what": "replaced its prose, all of which "
                        "was dropped, with prose from the spec", "why": why_invented})
        return fallback

    for section in draft.sections:
        section.body = stripped(section.title, section.body,
                                apidoc.strip_invented_block(section.body, invented))
    draft.summary = stripped("summary", draft.summary,
                             apidoc.strip_invented(draft.summary, invented))
    by_id = {op.operation_id: op for op in ops}
    for op in (by_id[i] for i in review["missing_ops"] if i in by_id):
        name = f"{op.method.upper()} {op.path}"
        why = "; ".join(m for m in review["missing"] if m.startswith(f"{name}:"))
        block, title = block_of(op), md.title_case(op.tag)
        target = next((s for s in draft.sections if s.title == title), None)
        if target is None:  # a lost group goes back before the closing sections
            closing = {s["title"] for s in outline
                       if s["kind"] in ("schemas", "errors", "summary_table")}
            at = next(i for i, s in enumerate(draft.sections) if s.title in closing)
            draft.sections.insert(at, Section(title=title, body=block))
            changes.append({"section": title, "what": f"restored the lost section with "
                            f"the reference of {name}", "why": why})
        else:
            target.body = apidoc.replace_block(target.body, op, block)
            changes.append({"section": title, "what": f"restored the reference of {name} "
                            "from the spec", "why": why})
    return draft, changes
