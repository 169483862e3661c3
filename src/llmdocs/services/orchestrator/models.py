"""Orchestrator tables. The registry: one row per known service, with its analysed
capabilities (JSON) and the health the discovery-agent last reported."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base, Sealed
from llmdocs.core.idempotency import KeyRecord


class RegisteredService(Base):
    __tablename__ = "orchestrator_services"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    base_url: Mapped[str] = mapped_column(String(1000))
    api_prefix: Mapped[str] = mapped_column(String(500))
    spec_url: Mapped[str] = mapped_column(String(2000))
    spec_hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    version: Mapped[str] = mapped_column(String(100))
    openapi_version: Mapped[str] = mapped_column(String(20))
    auth: Mapped[str] = mapped_column(String(20))
    health_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # who registered it (a token's subject); none: before owners were kept, the services'
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    operations: Mapped[str] = mapped_column(Text)  # list[Operation] as JSON
    operation_count: Mapped[int] = mapped_column(Integer)
    # operation ids offered as MCP tools, as JSON; none: the read-only ones (GET, HEAD)
    tool_operations: Mapped[str | None] = mapped_column(Text, nullable=True)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    health_status: Mapped[str] = mapped_column(String(20))
    health_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    health_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                               nullable=True)
    health_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                               nullable=True)


class WorkflowRun(Base):
    """One run of a registered workflow. The graph's own state lives in the LangGraph
    checkpointer (thread id = run id); this row is what people and other services see:
    status, progress, result, and the lease of the replica executing it."""

    __tablename__ = "orchestrator_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workflow: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    user_id: Mapped[str] = mapped_column(String(200))
    space: Mapped[str] = mapped_column(String(63), index=True, default="default")
    input: Mapped[str] = mapped_column(Sealed())  # JSON
    steps: Mapped[str] = mapped_column(Sealed())  # JSON list of step records
    result: Mapped[str | None] = mapped_column(Sealed(), nullable=True)  # JSON
    error: Mapped[str | None] = mapped_column(Sealed(), nullable=True)
    failure: Mapped[str | None] = mapped_column(String(20), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                         nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                        nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                         nullable=True)


class PrivacyRequest(Base):
    """An erasure across the services, and its receipt. Keyed by the pseudonym; the
    subject is kept only sealed and only until every service is done (a request a crash
    or an outage left unfinished resumes with it), then forgotten."""

    __tablename__ = "orchestrator_privacy_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    subject_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    owned_documents: Mapped[str] = mapped_column(String(10))
    transfer_to: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # who asked (subject, scopes, roles as JSON): a resumed request acts with their rights
    requester: Mapped[str] = mapped_column(Text)
    services: Mapped[str] = mapped_column(Text)  # key → ServiceErasure, as JSON
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          nullable=True)


class RunKey(KeyRecord, Base):
    """A run started with `Idempotency-Key`, and its answer (see core.idempotency)."""

    __tablename__ = "orchestrator_idempotency"
