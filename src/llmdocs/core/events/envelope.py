"""The one event envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmdocs.core.db import utcnow
from llmdocs.core.ids import new_id


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    specversion: str = "1.0"
    id: str = Field(default_factory=new_id)
    source: str
    type: str = Field(pattern=r"^llmdocs\.[a-z_]+\.[a-z_]+$")
    time: datetime = Field(default_factory=utcnow)
    subject: str | None = None
    datacontenttype: str = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)
    correlationid: str | None = None
    traceparent: str | None = None
    # CloudEvents extension: the space (core.spaces) of what the event is about, so
    # whoever delivers events to users filters them as the thing itself is filtered
    space: str | None = None


def make_event(
    service: str, type: str, data: dict[str, Any], subject: str | None = None,
    space: str | None = None,
) -> Event:
    """An event stamped with the current request's correlation id and trace context."""
    from llmdocs.core import tracing
    from llmdocs.core.middleware import correlation_id_var

    carrier: dict[str, str] = {}
    tracing.inject(carrier)
    return Event(
        source=f"llmdocs/{service}",
        type=type,
        subject=subject,
        data=data,
        correlationid=correlation_id_var.get(),
        traceparent=carrier.get("traceparent"),
        space=space,
    )
