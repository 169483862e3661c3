"""Which findings a caller sees, and how much of each. A finding belongs to its source's
space (a stored spec's), or to none (a URL or a service: a spec anyone may fetch), and
touches documents that each have their own space. A caller sees a finding whose source
space they are a member of, or a space-less one that touches a document they see (or
none at all), and of it only the documents they see: never another space's."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from llmdocs.services.analysis.models import Finding, FindingDocument
from llmdocs.services.analysis.schemas import FindingOut

HIDDEN_REASON = "regeneration failed for some of the documents"


def visible_findings(spaces: frozenset[str]) -> sa.ColumnElement[bool]:
    """The SQL condition of a finding seen by a member of `spaces`."""
    # its own alias: a query that joins the links to filter by document keeps its join
    link = aliased(FindingDocument)
    linked = sa.select(link.finding_id).where(link.finding_id == Finding.id)
    return sa.or_(Finding.space.in_(spaces), sa.and_(
        Finding.space.is_(None),
        sa.or_(linked.where(link.space.in_(spaces)).exists(), ~linked.exists())))


def seen(finding: FindingOut, spaces: frozenset[str] | None) -> FindingOut | None:
    """The finding as a member of `spaces` sees it (None: all of it), or None when they
    may not see it at all."""
    if spaces is None:
        return finding
    if finding.space is not None and finding.space not in spaces:
        return None
    if finding.space is None and finding.documents and not any(
            doc.space in spaces for doc in finding.documents):
        return None
    return trimmed(finding, spaces)


def trimmed(finding: FindingOut, spaces: frozenset[str] | None) -> FindingOut:
    """The finding without the documents of spaces other than `spaces` (None: all)."""
    shown = [doc for doc in finding.documents if spaces is None or doc.space in spaces]
    if len(shown) == len(finding.documents):
        return finding
    ids = {doc.document_id for doc in shown}
    # the reason names each document that failed, with what it failed on
    return finding.model_copy(update={
        "documents": shown,
        "closed_by": {k: v for k, v in finding.closed_by.items() if k in ids},
        "reason": HIDDEN_REASON if finding.reason else None})
