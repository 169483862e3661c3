"""Request and response models of the notification service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmdocs.core.db import UtcDateTime
from llmdocs.services.notification.channels.kinds import ChannelIn

# an event type or alert kind, or an fnmatch pattern of them: llmdocs.document.*, alert.*
EVENT_PATTERN = r"^[a-z_*?\[\]]+(\.[a-z_*?\[\]]+)*$"


class Filters(BaseModel):
    """What a notification must be about; an absent filter matches everything."""

    model_config = ConfigDict(extra="forbid")

    service: str | None = Field(None, max_length=200)
    document: str | None = Field(None, max_length=100)
    tag: str | None = Field(None, max_length=200)
    severity: Literal["info", "warning", "error", "critical"] | None = Field(
        None, description="the least severe to deliver")
    space: str | None = Field(None, max_length=100)


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Annotated[str, Field(max_length=200, pattern=EVENT_PATTERN)]] = Field(
        min_length=1, max_length=50,
        description="event types or alert kinds, or fnmatch patterns of them")
    filters: Filters = Field(default_factory=Filters)
    channel: ChannelIn


class SubscriptionOut(BaseModel):
    id: str
    owner: str
    events: list[str]
    filters: Filters
    channel: dict[str, Any] = Field(description="the channel's config, secrets left out")
    status: Literal["active", "paused"]
    paused_reason: str | None
    failures: int = Field(description="failed attempts in a row")
    created_at: UtcDateTime
    updated_at: UtcDateTime


class AttemptOut(BaseModel):
    number: int
    at: UtcDateTime
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryOut(BaseModel):
    id: str
    subscription_id: str
    notification_id: str
    kind: str
    status: Literal["pending", "delivered", "dead", "grouped"]
    attempts: int = Field(description="since it was created or last replayed")
    repeats: int
    next_attempt_at: UtcDateTime
    last_error: str | None
    created_at: UtcDateTime
    delivered_at: UtcDateTime | None
    history: list[AttemptOut] = Field(default_factory=list, description="every attempt")


class InboxItemOut(BaseModel):
    id: str
    kind: str
    title: str
    text: str
    severity: str
    link: str | None
    created_at: UtcDateTime
    read_at: UtcDateTime | None


class MarkRead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(None, max_length=1000,
                                  description="the items; none: every unread one")


class MarkedRead(BaseModel):
    marked: int
    unread: int
