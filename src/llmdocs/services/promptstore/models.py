"""Tables of the prompt-store. A prompt has immutable versions; labels point at them;
A/B tests compare versions; usage rows aggregate analytics per prompt version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base, Sealed, utcnow
from llmdocs.core.idempotency import KeyRecord


class Prompt(Base):
    __tablename__ = "promptstore_prompts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # the space it belongs to (core.spaces); names stay unique across spaces, so a
    # service's `by-name` lookup means one prompt
    space: Mapped[str] = mapped_column(String(63), index=True, server_default="default")
    type: Mapped[str] = mapped_column(String(10))  # text | chat
    category: Mapped[str] = mapped_column(String(100), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    latest_version: Mapped[int] = mapped_column(Integer)
    forked_from: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # lowercased name, description, tags and latest content: what search matches
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PromptVersion(Base):
    __tablename__ = "promptstore_versions"
    __table_args__ = (UniqueConstraint("prompt_id", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(
        ForeignKey("promptstore_prompts.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # text prompts: the template; chat prompts: JSON list of {role, content} templates
    content: Mapped[str] = mapped_column(Sealed())  # encrypted when a ring is set
    variables: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    config: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(20))  # draft|published|deprecated|archived
    message: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PromptLabel(Base):
    __tablename__ = "promptstore_labels"

    prompt_id: Mapped[str] = mapped_column(
        ForeignKey("promptstore_prompts.id", ondelete="CASCADE"), primary_key=True)
    label: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AbTest(Base):
    __tablename__ = "promptstore_abtests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(
        ForeignKey("promptstore_prompts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))  # running | stopped | completed
    variants: Mapped[list[dict[str, object]]] = mapped_column(JSON)  # [{version, weight}]
    metric: Mapped[str] = mapped_column(String(20))  # success | score | latency_ms | cost
    significance: Mapped[float] = mapped_column(Float)  # alpha, e.g. 0.05
    min_samples: Mapped[int] = mapped_column(Integer)
    auto_stop: Mapped[bool] = mapped_column(Boolean)
    promote_label: Mapped[str | None] = mapped_column(String(100), nullable=True)
    winner: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AbOutcome(Base):
    __tablename__ = "promptstore_outcomes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    test_id: Mapped[str] = mapped_column(
        ForeignKey("promptstore_abtests.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str | None] = mapped_column(String(200), nullable=True)
    success: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PromptUsage(Base):
    """Per prompt version: what `llmdocs.prompt.used` and `llmdocs.llm.completed`
    events reported. Version 0 collects completions that named no version."""

    __tablename__ = "promptstore_usage"

    prompt_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    renders: Mapped[int] = mapped_column(Integer, default=0)
    completions: Mapped[int] = mapped_column(Integer, default=0)
    successes: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms_total: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SeenEvent(Base):
    """Event ids the analytics consumer has applied: delivery is at least once."""

    __tablename__ = "promptstore_seen_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IdempotencyKey(KeyRecord, Base):
    """A creating request sent with `Idempotency-Key`, and its answer."""

    __tablename__ = "promptstore_idempotency"
