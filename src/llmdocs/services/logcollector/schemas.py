"""Request and response models of the log-collector."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from llmdocs.core.db import StorableText, UtcDateTime, utcnow

Level = Literal["debug", "info", "warning", "error", "critical"]
LEVELS: tuple[Level, ...] = ("debug", "info", "warning", "error", "critical")
MAX_BATCH = 1000
MAX_ATTRIBUTES_BYTES = 16_384
# a batch's body: ample for a thousand ordinary records; whoever sends records near the
# field limits sends smaller batches (the 413 says so)
MAX_BATCH_BYTES = 32 * 1024 * 1024
_ALIASES = {"warn": "warning", "fatal": "critical", "exception": "error", "trace": "debug"}


class LogIn(BaseModel):
    """One log line as a service sends it (the kernel's JSON log fields fit)."""

    id: StorableText | None = Field(None, min_length=1, max_length=64,
                           description="makes re-sending idempotent; default: a new id")
    time: UtcDateTime = Field(default_factory=utcnow)
    service: StorableText = Field(min_length=1, max_length=100)
    level: Level = "info"
    logger: StorableText = Field("", max_length=200)
    message: StorableText = Field(max_length=65_536)
    correlation_id: StorableText | None = Field(None, max_length=128)
    trace_id: StorableText | None = Field(None, max_length=64)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.lower()
            return _ALIASES.get(value, value)
        return value

    @field_validator("attributes")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, default=str)) > MAX_ATTRIBUTES_BYTES:
            raise ValueError(f"attributes exceed {MAX_ATTRIBUTES_BYTES} bytes as JSON")
        return value


class LogBatch(BaseModel):
    records: list[LogIn] = Field(min_length=1, max_length=MAX_BATCH)


class Accepted(BaseModel):
    received: int
    stored: int  # fewer than received when some ids were already stored


class LogOut(BaseModel):
    seq: int
    id: str
    time: UtcDateTime
    service: str
    level: str
    logger: str
    message: str
    correlation_id: str | None
    trace_id: str | None
    attributes: dict[str, Any]


class EventOut(BaseModel):
    seq: int
    id: str
    type: str
    source: str
    service: str
    subject: str | None
    time: UtcDateTime
    correlation_id: str | None
    trace_id: str | None = None  # from the event's traceparent
    space: str | None = None  # what it is about is in this space (none: in no space)
    data: dict[str, Any]


class Page(BaseModel):
    items: list[LogOut] | list[EventOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class WindowStats(BaseModel):
    window: str
    since: UtcDateTime
    logs_by_service: dict[str, int]
    logs_by_level: dict[str, int]
    events_by_type: dict[str, int]
    events_by_service: dict[str, int]


class TimelineEntry(BaseModel):
    kind: Literal["log", "event"]
    time: UtcDateTime
    service: str
    summary: str  # the log message or the event type
    record: LogOut | EventOut


class Correlation(BaseModel):
    correlation_id: str
    services: list[str]
    trace_ids: list[str]  # the traces the request's logs and events belong to
    count: int
    truncated: bool
    timeline: list[TimelineEntry]


class AuditIn(BaseModel):
    """One audit record as the kernel publishes it (llmdocs.core.audit)."""

    id: StorableText = Field(min_length=1, max_length=64)
    time: UtcDateTime
    service: StorableText = Field(min_length=1, max_length=100)
    actor: StorableText | None = Field(None, max_length=200)
    actor_kind: Literal["user", "service"] | None = None
    roles: list[StorableText] = Field(default_factory=list, max_length=100)
    act: list[StorableText] = Field(default_factory=list, max_length=10)
    client: StorableText | None = Field(None, max_length=100)
    method: StorableText = Field(max_length=10)
    route: StorableText = Field(max_length=500)
    action: StorableText = Field(max_length=200)
    resource_type: StorableText = Field(max_length=100)
    resource_id: StorableText | None = Field(None, max_length=500)
    space: StorableText | None = Field(None, max_length=200)
    outcome: int = Field(ge=100, le=599)
    correlation_id: StorableText | None = Field(None, max_length=128)


class AuditOut(AuditIn):
    seq: int
    chain: str  # the service whose chain holds it
    chain_seq: int  # its number in the chain, from 1
    prev_hash: str  # the hash of the record before it in the chain (64 zeros: none)
    hash: str  # SHA-256 over its canonical JSON, prev_hash included


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: int | None = Field(description="pass as `cursor` for the next page")


class AuditBreak(BaseModel):
    chain: str
    chain_seq: int
    seq: int
    record_id: str
    problem: Literal["changed", "removed", "inserted"]
    detail: str


class Verification(BaseModel):
    intact: bool
    chains: int
    checked: int  # records whose hash and link were checked
    first_break: AuditBreak | None = None
