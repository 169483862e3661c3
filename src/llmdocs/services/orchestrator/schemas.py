"""Request and response models of the orchestrator's registry, tool catalog and runs.

The capability models (`Operation`, ...) live in `llmdocs.openapi`; the registry stores them."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, Field, field_validator

from llmdocs.core.bounded import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    BoundedJson,
    bounded_json,
)
from llmdocs.core.db import StorableText, UtcDateTime
from llmdocs.core.spaces import DEFAULT_SPACE, MAX_NAME, valid_space
from llmdocs.formats import normalize_format
from llmdocs.openapi.models import Operation

SERVICE_NAME = r"^[a-z0-9][a-z0-9._-]{0,99}$"


def _spec_url(value: str) -> str:
    if not value.isprintable() or " " in value:  # NUL, controls, line breaks, spaces
        raise ValueError("must be a URL without spaces or control characters")
    url = urlsplit(value)  # a malformed one ("http://[::1") raises ValueError: a 422
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError("must be an absolute http(s) URL, "
                         "such as https://api.example.com/openapi.json")
    if url.username is not None or url.password is not None:
        raise ValueError("must not hold credentials: they would be kept with the run and "
                         "its provenance; store the spec in the doc-store instead")
    url.port  # noqa: B018 (raises on a port that is not a number in range)
    return value


# A spec to fetch, checked when the request arrives rather than by a run that fails
SpecUrl = Annotated[str, Field(max_length=2000), AfterValidator(_spec_url)]
MAX_BASE_URL = 1000  # the column a registration and a discovery keep it in


def _base_url(url: AnyHttpUrl) -> AnyHttpUrl:
    if len(str(url)) > MAX_BASE_URL:
        raise ValueError(f"must be at most {MAX_BASE_URL} characters")
    if url.username is not None or url.password is not None:
        raise ValueError("must not hold credentials: they would be kept with every "
                         "discovery and the registration")
    if url.query is not None or url.fragment is not None:
        raise ValueError("must be a base URL without a query or fragment: /health and "
                         "the spec paths are added to it")
    return url


# A space's name (core.spaces): a run's, an execution's, the document it stores
SpaceName = Annotated[str, Field(min_length=1, max_length=MAX_NAME),
                      AfterValidator(valid_space)]


# A service's address, as the registry and the discovery-agent keep it
BaseUrl = Annotated[AnyHttpUrl, AfterValidator(_base_url)]


def _health_path(value: str) -> str:
    if not value.startswith("/") or not value.isprintable() or " " in value:
        raise ValueError("must be a path that starts with '/', without spaces or control "
                         "characters: it is added to base_url for every health check")
    return value


# Where a service answers its health: added to its base URL by each probe
HealthPath = Annotated[str, Field(max_length=500), AfterValidator(_health_path)]
# The id of a stored document or a run: it goes into other services' URLs
EntityId = Annotated[str, Field(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]

# Free-form JSON a request may bring (a run's input, its entities and follow-up, a tool's
# arguments) is kept in the run record and in every checkpoint of the run: bounded when
# it arrives, before any run exists (see llmdocs.core.bounded)
MAX_OPERATIONS = 10_000
# the operation ids a service offers as MCP tools; None keeps what is set (for a new
# service: its read-only operations, GET and HEAD)
OperationIds = Annotated[list[Annotated[StorableText, Field(min_length=1, max_length=200)]],
                         Field(max_length=MAX_OPERATIONS)]
ToolOperations = Annotated[
    OperationIds | None,
    Field(description="operation ids offered as MCP tools (/mcp/services/{name}); leave "
          "out to keep the current list (a new service: its GET and HEAD ones)")]

HealthStatus = Literal["unknown", "healthy", "degraded", "unhealthy", "unreachable"]


class ServiceRegistration(BaseModel):
    """What the discovery-agent registers; the same spec hash again is a no-op."""

    name: str = Field(pattern=SERVICE_NAME)
    base_url: BaseUrl
    api_prefix: StorableText = Field("", max_length=500,
                                     description="path the spec's server adds")
    spec_url: StorableText = Field("", max_length=2000)
    spec_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    title: StorableText = Field("", max_length=500)
    version: StorableText = Field("", max_length=100)
    openapi_version: StorableText = Field("", max_length=20)
    auth: Literal["service_token", "none"] = Field(
        "none", description="service_token: one of llmdocs' own services, registered by a "
        "service; a third-party service is 'none'")
    health_path: HealthPath | None = "/health"
    operations: list[Operation] = Field(default_factory=list, max_length=MAX_OPERATIONS)
    tool_operations: ToolOperations = None


class RegistrationResult(BaseModel):
    name: str
    spec_hash: str
    created: bool
    changed: bool


class ServiceHealth(BaseModel):
    status: HealthStatus = "unknown"
    reason: str | None = None
    changed_at: UtcDateTime | None = None
    checked_at: UtcDateTime | None = None


class HealthUpdate(BaseModel):
    status: HealthStatus
    reason: StorableText | None = Field(None, max_length=2000)


class ServiceSummary(BaseModel):
    name: str
    base_url: str
    title: str
    version: str
    spec_hash: str
    operation_count: int
    auth: Literal["service_token", "none"]
    health_path: str | None
    owner: str | None = Field(None, description="who registered it; none: llmdocs' services")
    health: ServiceHealth
    registered_at: UtcDateTime
    updated_at: UtcDateTime


class ServiceDetail(ServiceSummary):
    api_prefix: str
    spec_url: str
    openapi_version: str
    operations: list[Operation]
    groups: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict, description="tag → resource → operation ids")
    tool_operations: list[str] = Field(
        default_factory=list, description="operation ids offered as MCP tools")


class EcosystemHealth(BaseModel):
    status: HealthStatus
    counts: dict[str, int]
    services: dict[str, ServiceHealth]


class ToolCall(BaseModel):
    arguments: Annotated[dict[str, Any], BoundedJson] = Field(default_factory=dict)


class ToolResult(BaseModel):
    tool: str
    status: int
    body: Any


class AgentRequest(BaseModel):
    goal: StorableText = Field(min_length=3, max_length=2000)
    max_steps: int = Field(3, ge=1, le=8)


class AgentStep(BaseModel):
    tool: str
    arguments: dict[str, Any]
    result: Any


class AgentRun(BaseModel):
    id: str
    goal: str
    status: str
    steps: list[AgentStep]
    answer: str
    offered_tools: list[str]


# --- workflow runs ----------------------------------------------------------------

# "storing": the run has reached its commit point and stores its result; it can no
# longer be cancelled, only finish (or, if its replica dies, resume and finish)
RunStatus = Literal["pending", "running", "storing", "completed", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


class WorkflowInfo(BaseModel):
    name: str
    version: str
    description: str
    steps: list[str]
    input_schema: dict[str, Any]


class RunRequest(BaseModel):
    model_config = {"extra": "forbid"}

    # each free-form field of a workflow's input has its own bounds (BoundedJson); the
    # whole input has them too, with room for several such fields
    input: Annotated[dict[str, Any], bounded_json(MAX_JSON_DEPTH + 2, 4 * MAX_JSON_BYTES)] \
        = Field(default_factory=dict)
    # whom the run is for: services and workflow admins name anyone; others only
    # themselves, or no one (then it is the caller)
    user_id: StorableText | None = Field(None, min_length=1, max_length=200)


# a run reads the stored documents its input names, or searches for, with the
# orchestrator's own token: whoever starts it must hold this scope (see reads_documents)
DOCUMENT_INPUTS = ("document_ids", "spec_document_id", "document_id", "search",
                   "refresh_document_id")
READ_DOCUMENTS = "docs:read"
# a refresh stores a new version of the document it names, for whoever starts it
WRITE_DOCUMENTS = "docs:write"


def reads_documents(data: dict[str, Any]) -> bool:
    """Whether a run of this (validated) input reads stored documents."""
    return any(data.get(key) for key in DOCUMENT_INPUTS)


def writes_documents(data: dict[str, Any]) -> bool:
    """Whether a run of this (validated) input stores over an existing document."""
    return bool(data.get("refresh_document_id"))


class RunCheck(BaseModel):
    """A run's input as the workflow would take it (defaults filled in), not started."""

    workflow: str
    version: str
    input: dict[str, Any]


class StepRecord(BaseModel):
    name: str
    status: Literal["completed", "failed"]
    started_at: UtcDateTime
    duration_ms: float
    detail: str | None = None


Failure = Literal["request", "unavailable", "timeout", "internal"]


class WorkflowRunOut(BaseModel):
    id: str
    workflow: str
    version: str
    status: RunStatus
    user_id: str
    space: str = DEFAULT_SPACE  # its input's: where it reads and stores documents
    input: dict[str, Any]
    steps: list[StepRecord]
    result: dict[str, Any] | None
    error: str | None
    # why a failed run failed: its request ("request", the caller's to change), a
    # dependency down ("unavailable") or too slow ("timeout"), both worth a retry, or a
    # fault of ours ("internal")
    failure: Failure | None = None
    attempts: int
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None


class RunPage(BaseModel):
    items: list[WorkflowRunOut]


DocType = Literal["api_documentation", "summary", "answer", "document"]


class WorkflowInput(BaseModel):
    """What every workflow run is asked with: the request, its API and who asked. Its
    text reaches the run record and the checkpoints: NUL is refused (RunRequest.input
    refuses it in every string), ids and the spec URL are checked as they arrive, and
    each free-form field is bounded (`BoundedJson`)."""

    model_config = {"extra": "forbid"}

    query: str = Field(min_length=3, max_length=4000)
    format: str = Field("markdown", max_length=20)
    service: str | None = Field(None, max_length=100)
    spec_document_id: EntityId | None = None
    spec_url: SpecUrl | None = None
    intent: str | None = Field(None, max_length=100)
    entities: Annotated[dict[str, Any], BoundedJson] = Field(default_factory=dict)
    session_id: str | None = Field(None, max_length=100)
    # where the run reads documents (this space, and `default` while it is open to all)
    # and stores what it makes; starting it takes the right to write there
    space: SpaceName = DEFAULT_SPACE
    # a session's follow-up: its own words and the execution, run and document it changes
    follow_up: Annotated[dict[str, Any] | None, BoundedJson] = None

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        return normalize_format(value)


class DocRequest(WorkflowInput):
    """What a document-generation run is asked to do."""

    doc_type: DocType = "api_documentation"
    title: str | None = Field(None, max_length=300)
    document_ids: list[EntityId] = Field(default_factory=list, max_length=20)
    search: str | None = Field(None, max_length=500)
    # what to add ("the error codes"): sections the spec can give, else words for the model
    instructions: Annotated[list[str], BoundedJson] = Field(default_factory=list,
                                                             max_length=10)
    # a stored API document to write again as its next version, from its spec's latest
    # version: its own request is read from its provenance, the fields above are unused
    refresh_document_id: EntityId | None = None


# --- privacy requests -----------------------------------------------------------------

PrivacyStatus = Literal["pending", "partial", "completed"]
OwnedDocuments = Literal["delete", "transfer"]


class ServiceErasure(BaseModel):
    """One service's part of an erasure: done (with what it erased, "what" → count),
    not yet, or not possible now (the service is down: a retry completes it)."""

    status: Literal["pending", "done", "unavailable", "refused"]
    erased: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


class ErasureReceipt(BaseModel):
    """What an erasure did, service by service; it names the person only by pseudonym."""

    id: str
    pseudonym: str
    status: PrivacyStatus
    owned_documents: OwnedDocuments
    transfer_to: str | None
    services: dict[str, ServiceErasure]
    nothing_found: bool  # every service done, and none held anything
    created_at: UtcDateTime
    completed_at: UtcDateTime | None
