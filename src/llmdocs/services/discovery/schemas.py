"""Request and response models of the discovery-agent."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, Field

from llmdocs.core.db import UtcDateTime
from llmdocs.services.orchestrator.schemas import SERVICE_NAME, HealthStatus


class DiscoverRequest(BaseModel):
    name: str = Field(pattern=SERVICE_NAME)
    base_url: AnyHttpUrl
    spec_url: str | None = Field(None, max_length=2000,
                                 description="absolute, or relative to base_url; "
                                             "default: the usual paths are tried")


class DiscoveryResult(BaseModel):
    id: str
    name: str
    base_url: str
    status: Literal["registered", "unchanged", "failed"]
    error: str | None
    warnings: list[str]
    spec_url: str | None
    spec_hash: str | None
    operation_count: int
    health: HealthStatus
    started_at: UtcDateTime
    finished_at: UtcDateTime


class HealthTransition(BaseModel):
    """The data of a `llmdocs.service.health_changed` event, with its time."""

    model_config = {"populate_by_name": True, "serialize_by_alias": True}

    service: str
    from_status: HealthStatus = Field(alias="from")
    to_status: HealthStatus = Field(alias="to")
    reason: str | None
    at: UtcDateTime


class WatchedHealth(BaseModel):
    service: str
    status: HealthStatus
    reason: str | None
    changed_at: UtcDateTime
    checked_at: UtcDateTime
