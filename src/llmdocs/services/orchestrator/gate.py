"""The quality gate, by code: the document check (`llmdocs.claims.document`: each
operation documented, every claim supported by the spec) with the reference's own
checklist on top, and prose acceptance (sentences kept ÷ written). A document passes
only when completeness and truthfulness are 1.0. No I/O."""

from __future__ import annotations

from typing import Any

from llmdocs.claims import DocumentCheck, Vocabulary, check_reference, truthfulness
from llmdocs.openapi.reference import OperationRef, Reference
from llmdocs.services.orchestrator.apidoc import Coverage


def checklist(op: OperationRef) -> list[tuple[str, str | None]]:
    """What a generated block shows beyond the parameters and responses the document
    check asks of any document, each as (item, its text in the block; None when the
    reference could not make it, so the block lacks it whatever it says)."""
    unmade = {"example request" if m == "request" else "example response"
              for m in op.examples_missing}
    items: list[tuple[str, str | None]] = [
        ("summary", op.summary.strip())] if op.summary.strip() else []
    if op.request_body is not None:
        items.append(("request body", "**Request body**"))
        items += [(f"body field {f.name}", f"`{f.name}`") for f in op.request_body.fields]
    items.append(("example request", "**Example request**"))
    if any(r.status.startswith("2") and r.body for r in op.responses):
        items.append(("example response", "**Example response**"))
    return [(item, None if item in unmade else shown) for item, shown in items]


def check(markdown: str, reference: Reference, vocabulary: Vocabulary) -> DocumentCheck:
    """The document check of a generated API document, with its checklist."""
    return check_reference(markdown, reference, vocabulary, checklist)


def sources_cited(markdown: str, sources: list[dict[str, Any]]) -> Coverage:
    """A document from source documents is complete when it cites each of them."""
    result = Coverage(total=len(sources))
    for source in sources:
        if source["document_id"] in markdown:
            result.covered += 1
        else:
            result.missing.append(f"source {source['document_id']} is not cited")
    return result


def prose_acceptance(prose: list[dict[str, Any]]) -> float | None:
    """Sentences kept ÷ written by the model; None when it wrote none."""
    written = sum(section["written"] for section in prose)
    return sum(section["kept"] for section in prose) / written if written else None


def api_verdict(checked: DocumentCheck, prose: list[dict[str, Any]]) -> dict[str, Any]:
    """The gate's figures for an API document, from its document check."""
    return _verdict(checked.completeness, checked.truthfulness, prose, {
        "items": checked.operations, "claims": checked.claims,
        "unsupported": [f"{u.kind}: {u.claim}" for u in checked.unsupported],
        "missing": checked.gaps, "missing_ops": checked.missing_ops,
        "invented": [u.claim for u in checked.unsupported if u.kind == "operation"]})


def sources_verdict(markdown: str, complete: Coverage, vocabulary: Vocabulary,
                    prose: list[dict[str, Any]]) -> dict[str, Any]:
    """The gate's figures for a document from source texts: each cited, each claim in
    their vocabulary."""
    truth = truthfulness(markdown, vocabulary)
    return _verdict(complete.ratio, truth.ratio, prose, {
        "items": complete.total, "claims": truth.total, "unsupported": truth.unsupported,
        "missing": complete.missing, "missing_ops": [], "invented": []})


def _verdict(completeness: float, truth: float, prose: list[dict[str, Any]],
             found: dict[str, Any]) -> dict[str, Any]:
    accepted = prose_acceptance(prose)
    return {
        "completeness": round(completeness, 4), "truthfulness": round(truth, 4),
        "prose_acceptance": None if accepted is None else round(accepted, 4),
        "approved": completeness == 1.0 and truth == 1.0 and not found["invented"],
        **found, "unsupported": found["unsupported"][:50]}
