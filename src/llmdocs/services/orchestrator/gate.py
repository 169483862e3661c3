"""The quality gate, by code: completeness (each operation's checklist), truthfulness
(supported claims ÷ claims over the whole document) and prose acceptance (sentences
kept ÷ written). A document passes only when the first two are 1.0. No I/O."""

from __future__ import annotations

from typing import Any

from llmdocs.claims import Vocabulary, truthfulness
from llmdocs.openapi.reference import OperationRef, Reference
from llmdocs.services.orchestrator import apidoc
from llmdocs.services.orchestrator.apidoc import Coverage


def checklist(op: OperationRef) -> list[tuple[str, str]]:
    """What a developer needs of one operation, each as (item, the text that shows it in
    its block): summary, every parameter, the body and its fields, every response, the
    examples."""
    items = [("summary", op.summary.strip())] if op.summary.strip() else []
    items += [(f"parameter {p.name}", f"`{p.name}`") for p in op.parameters]
    if op.request_body is not None:
        items.append(("request body", "**Request body**"))
        items += [(f"body field {f.name}", f"`{f.name}`") for f in op.request_body.fields]
    items += [(f"response {r.status}", f"`{r.status}`") for r in op.responses]
    items.append(("example request", "**Example request**"))
    if any(r.status.startswith("2") and r.body for r in op.responses):
        items.append(("example response", "**Example response**"))
    return items


def completeness(markdown: str, reference: Reference) -> Coverage:
    """Each operation's checklist against its block in the document (an example the
    reference could not make counts as missing: the document lacks it)."""
    result = Coverage()
    found = apidoc.blocks(markdown)
    for op in reference.operations:
        name = f"{op.method.upper()} {op.path}"
        items = checklist(op)
        result.total += 1 + len(items)
        block = found.get((op.method.upper(), op.path))
        if block is None:
            result.missing.append(f"{name}: the endpoint is not documented")
            result.missing_ops.append(op.operation_id)
            continue
        # an example the reference could not make is missing, whatever the block says
        unmade = {"example request" if m == "request" else "example response"
                  for m in op.examples_missing}
        lost = [item for item, shown in items if shown not in block or item in unmade]
        result.covered += 1 + len(items) - len(lost)
        result.missing += [f"{name}: {item} is missing" for item in lost]
        if lost:
            result.missing_ops.append(op.operation_id)
    return result


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


def verdict(markdown: str, complete: Coverage, vocabulary: Vocabulary,
            prose: list[dict[str, Any]], invented: list[str]) -> dict[str, Any]:
    """The gate's figures and whether the document passes: complete and wholly true."""
    truth = truthfulness(markdown, vocabulary)
    accepted = prose_acceptance(prose)
    return {
        "completeness": round(complete.ratio, 4), "truthfulness": round(truth.ratio, 4),
        "prose_acceptance": None if accepted is None else round(accepted, 4),
        "approved": complete.ratio == 1.0 and truth.ratio == 1.0 and not invented,
        "items": complete.total, "claims": truth.total,
        "unsupported": truth.unsupported[:50], "missing": complete.missing,
        "missing_ops": complete.missing_ops, "invented": invented}
