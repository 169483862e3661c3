"""Doc-store tables: documents, immutable versions, tags, relations, idempotency keys,
and the spaces documents belong to with their members (core.spaces).
The search indexes differ per dialect, so the migration creates them (see `search.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base, Sealed, SealedFields, SealedJSON
from llmdocs.core.spaces import DEFAULT_SPACE, MAX_NAME

# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the rowid the FTS table uses
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
QUERY = ("user_context", "query")  # of a provenance record: what the user asked


class Document(Base):
    """What a document is now: its current version number and its mutable metadata."""

    __tablename__ = "docstore_documents"
    __table_args__ = (
        sa.Index("ix_docstore_documents_deleted", "id",
                 sqlite_where=sa.text("deleted_at IS NOT NULL"),
                 postgresql_where=sa.text("deleted_at IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    # the space it belongs to, for good: readers see it only as members there
    space: Mapped[str] = mapped_column(sa.String(MAX_NAME), index=True,
                                       server_default=DEFAULT_SPACE)
    title: Mapped[str] = mapped_column(sa.String(500))
    format: Mapped[str] = mapped_column(sa.String(40), index=True)
    source: Mapped[str] = mapped_column(sa.String(500), index=True)
    author: Mapped[str] = mapped_column(sa.String(200), index=True)
    version: Mapped[int] = mapped_column(sa.Integer())
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", sa.JSON())
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # why the analysis service found the current version stale (a source changed), and
    # its finding; cleared when a new version is stored
    stale_reason: Mapped[str | None] = mapped_column(sa.String(1000))
    stale_finding: Mapped[str | None] = mapped_column(sa.String(36))


class Version(Base):
    """One immutable version: text in `content`, or bytes in the blob store at `blob_key`."""

    __tablename__ = "docstore_versions"
    __table_args__ = (
        sa.UniqueConstraint("document_id", "version",
                            name="uq_docstore_versions_document_id_version"),
        sa.Index("ix_docstore_versions_hash", "content_hash"),
        # at most one current version per document, on both databases
        sa.Index("ix_docstore_versions_current", "document_id", unique=True,
                 sqlite_where=sa.text("is_current"), postgresql_where=sa.text("is_current")),
    )

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("docstore_documents.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(sa.Integer())
    is_current: Mapped[bool] = mapped_column(sa.Boolean())
    title: Mapped[str] = mapped_column(sa.String(500))
    # encrypted when a ring is set; the search indexes get the plaintext's terms as it
    # is written (FTS5 through `llmdocs_plain`, PostgreSQL's stored `search_vector`,
    # which is not in this model: see `search.SEARCHABLE_VERSIONS`)
    content: Mapped[str | None] = mapped_column(Sealed())
    blob_key: Mapped[str | None] = mapped_column(sa.String(300))
    filename: Mapped[str | None] = mapped_column(sa.String(255))
    media_type: Mapped[str] = mapped_column(sa.String(200))
    size: Mapped[int] = mapped_column(sa.BigInteger())
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    # the query a generated document was made for is sealed with a ring; the rest of
    # the record (inputs, steps, models, costs) stays readable
    provenance: Mapped[dict[str, Any] | None] = mapped_column(SealedFields(QUERY))
    author: Mapped[str] = mapped_column(sa.String(200))
    message: Mapped[str | None] = mapped_column(sa.String(1000))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Tag(Base):
    __tablename__ = "docstore_tags"
    __table_args__ = (sa.Index("ix_docstore_tags_tag", "tag", "document_id"),)

    document_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("docstore_documents.id", ondelete="CASCADE"),
        primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(100), primary_key=True)


class Relation(Base):
    """`source_id` --type--> `target_id`, e.g. a generated doc derived_from its spec."""

    __tablename__ = "docstore_relations"
    __table_args__ = (sa.Index("ix_docstore_relations_target", "target_id", "type"),)

    source_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("docstore_documents.id", ondelete="CASCADE"),
        primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    target_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("docstore_documents.id", ondelete="CASCADE"),
        primary_key=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class IdempotencyKey(Base):
    """The answer given to a write carrying `Idempotency-Key`, replayed on a retry."""

    __tablename__ = "docstore_idempotency"

    principal: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[int] = mapped_column(sa.Integer())
    response: Mapped[dict[str, Any]] = mapped_column(SealedJSON())  # sealed with a ring
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Space(Base):
    """A team's area: documents, prompts and runs belong to one."""

    __tablename__ = "docstore_spaces"

    name: Mapped[str] = mapped_column(sa.String(MAX_NAME), primary_key=True)
    description: Mapped[str] = mapped_column(sa.String(500), server_default="")
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Member(Base):
    """A subject's role in a space; every service asks the doc-store for these."""

    __tablename__ = "docstore_space_members"
    __table_args__ = (sa.Index("ix_docstore_space_members_subject", "subject"),)

    space: Mapped[str] = mapped_column(
        sa.String(MAX_NAME), sa.ForeignKey("docstore_spaces.name", ondelete="CASCADE"),
        primary_key=True)
    subject: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    granted_by: Mapped[str] = mapped_column(sa.String(200))
    granted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


# The Core tables, for bulk paths that insert and read plain rows without ORM objects.
DOCUMENTS = cast(sa.Table, Document.__table__)
VERSIONS = cast(sa.Table, Version.__table__)
TAGS = cast(sa.Table, Tag.__table__)
RELATIONS = cast(sa.Table, Relation.__table__)
IDEMPOTENCY = cast(sa.Table, IdempotencyKey.__table__)
SPACES = cast(sa.Table, Space.__table__)
MEMBERS = cast(sa.Table, Member.__table__)
