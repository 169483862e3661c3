"""Analysis tables: findings (a source's change, its diff and the documents it made
stale), which documents each finding touches (to list them by document), and the last
spec seen of each registered service (what its next one is compared with)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base


class Finding(Base):
    __tablename__ = "analysis_findings"
    __table_args__ = (
        # an event delivered twice finds the finding of its first delivery
        sa.UniqueConstraint("source", "base", "head", name="uq_analysis_findings_change"),
        sa.Index("ix_analysis_findings_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(2100))  # docstore:<id> | url:… | service:…
    # a stored spec's space; none for a URL or a service (see analysis.visibility)
    space: Mapped[str | None] = mapped_column(sa.String(63), nullable=True)
    base: Mapped[str] = mapped_column(sa.String(64))  # a version number, or a spec hash
    head: Mapped[str] = mapped_column(sa.String(64))
    diff: Mapped[dict[str, Any]] = mapped_column(sa.JSON())
    documents: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON())
    status: Mapped[str] = mapped_column(sa.String(10))  # open | closed
    reason: Mapped[str | None] = mapped_column(sa.Text())
    closed_by: Mapped[dict[str, int]] = mapped_column(sa.JSON())
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class FindingDocument(Base):
    __tablename__ = "analysis_finding_documents"
    __table_args__ = (sa.Index("ix_analysis_finding_documents_document", "document_id"),)

    finding_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("analysis_findings.id", ondelete="CASCADE"),
        primary_key=True)
    document_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    space: Mapped[str] = mapped_column(sa.String(63), default="default")


class SpecSeen(Base):
    """A registered service's spec, or that at a URL documents are generated from, as
    last fetched: the registry keeps only its hash, a URL nothing."""

    __tablename__ = "analysis_specs_seen"

    source: Mapped[str] = mapped_column(sa.String(2100), primary_key=True)  # service:|url:
    hash: Mapped[str] = mapped_column(sa.String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON())
    seen_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
