"""Request and response models of the discovery-agent."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urljoin, urlsplit

from pydantic import (
    BaseModel,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from llmdocs.core.db import UtcDateTime
from llmdocs.services.orchestrator.schemas import (
    SERVICE_NAME,
    BaseUrl,
    HealthStatus,
    SpecUrl,
    ToolOperations,
)

_spec_urls: TypeAdapter[str] = TypeAdapter(SpecUrl)


class DiscoverRequest(BaseModel):
    name: str = Field(pattern=SERVICE_NAME)
    base_url: BaseUrl
    spec_url: str | None = Field(None, max_length=2000,
                                 description="absolute, or relative to base_url; "
                                             "default: the usual paths are tried")
    tool_operations: ToolOperations = None

    @field_validator("spec_url")
    @classmethod
    def _fetchable(cls, spec_url: str | None, info: ValidationInfo) -> str | None:
        """The URL the spec is fetched from (joined with base_url, as the fetch joins
        it) passes a spec URL's checks: no control characters, credentials or bad port,
        at most 2000 characters. Another scheme (file:) is left to the fetch, which
        refuses it as a failed discovery."""
        base = info.data.get("base_url")
        if not spec_url or base is None:  # none, or base_url already refused
            return spec_url
        try:
            joined = urljoin(str(base).rstrip("/") + "/", spec_url)
            if urlsplit(joined).scheme in ("http", "https"):
                _spec_urls.validate_python(joined)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise ValueError(f"{error.get('ctx', {}).get('error') or error['msg']} "
                             "(joined with base_url)") from None
        return spec_url


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
