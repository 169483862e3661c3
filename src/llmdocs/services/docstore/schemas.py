"""Request and response models of the doc-store."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from llmdocs.core.bounded import StorableJson
from llmdocs.core.db import INT4_MAX, StorableText, UtcDateTime
from llmdocs.core.spaces import DEFAULT_SPACE, Role, SpaceName

Tag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}$")]
Format = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.+-]{0,39}$")]
RelationType = Literal["derived_from", "supersedes", "references"]
# a JSON write's content is text a column holds; binary content (or text with a NUL)
# goes as a file (multipart)
TextContent = Annotated[StorableText, Field(description="text; binary content goes as a file")]


class RelationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: RelationType
    target_id: StorableText = Field(min_length=1, max_length=36)


class DocumentFields(BaseModel):
    """What a new version may set besides its content."""

    model_config = ConfigDict(extra="forbid")

    title: StorableText | None = Field(None, max_length=500)
    format: Format | None = None
    provenance: Annotated[dict[str, Any] | None, StorableJson] = None
    message: StorableText | None = Field(None, max_length=1000)
    relations: list[RelationIn] = Field(default_factory=list, max_length=100)


class DocumentCreate(DocumentFields):
    content: TextContent
    source: StorableText = Field("", max_length=500)
    author: StorableText | None = Field(None, max_length=200)
    metadata: Annotated[dict[str, Any], StorableJson] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    space: SpaceName = Field(DEFAULT_SPACE, description="the space it belongs to, for good")


class DocumentUpdate(DocumentFields):
    content: TextContent


class DocumentPatch(BaseModel):
    """Metadata is merged (a null value removes a key); tags, when given, replace."""

    model_config = ConfigDict(extra="forbid")

    metadata: Annotated[dict[str, Any] | None, StorableJson] = None
    tags: list[Tag] | None = Field(None, max_length=50)
    source: StorableText | None = Field(None, max_length=500)
    author: StorableText | None = Field(None, max_length=200)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=INT4_MAX)
    message: StorableText | None = Field(None, max_length=1000)


class StaleMark(BaseModel):
    """The analysis service's word that a document's sources changed under it."""

    model_config = ConfigDict(extra="forbid")

    reason: StorableText = Field(min_length=1, max_length=1000)
    finding_id: StorableText = Field(min_length=1, max_length=36)
    version: int | None = Field(None, ge=1, le=INT4_MAX, description="only if still current")


class DocumentSummary(BaseModel):
    document_id: str
    space: str = DEFAULT_SPACE
    version: int
    content_hash: str
    title: str
    format: str
    source: str
    author: str
    kind: Literal["text", "binary"]
    media_type: str
    size: int
    filename: str | None
    metadata: dict[str, Any]
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    stale: bool = False  # a source of the current version changed (see stale_reason)
    stale_reason: str | None = None
    stale_finding: str | None = None  # the analysis service's finding that says how


class StoredDocument(DocumentSummary):
    """The answer to a write: `created` is false when an identical document existed."""

    created: bool = True


class DocumentOut(DocumentSummary):
    content: str | None = None
    content_url: str
    provenance: dict[str, Any] | None = None


class VersionOut(BaseModel):
    document_id: str
    version: int
    is_current: bool
    content_hash: str
    title: str
    kind: Literal["text", "binary"]
    media_type: str
    size: int
    filename: str | None
    author: str
    message: str | None
    created_at: datetime


class VersionDetail(VersionOut):
    content: str | None = None
    content_url: str
    provenance: dict[str, Any] | None = None


class DocumentPage(BaseModel):
    items: list[DocumentSummary]
    next_cursor: str | None


class VersionList(BaseModel):
    document_id: str
    items: list[VersionOut]


class DiffOut(BaseModel):
    document_id: str
    from_version: int
    to_version: int
    from_hash: str
    to_hash: str
    identical: bool
    diff: str


class RelationOut(BaseModel):
    source_id: str
    type: RelationType
    target_id: str
    created_at: datetime


class RelationList(BaseModel):
    document_id: str
    outgoing: list[RelationOut]
    incoming: list[RelationOut]


class LineageNode(BaseModel):
    document_id: str
    depth: int
    via: RelationType | None
    parent_id: str | None


class Lineage(BaseModel):
    document_id: str
    nodes: list[LineageNode]


class ProvenanceOut(BaseModel):
    document_id: str
    version: int
    content_hash: str
    provenance: dict[str, Any] | None
    relations: RelationList


class SearchHit(BaseModel):
    document_id: str
    version: int
    title: str
    format: str
    source: str
    author: str
    tags: list[str]
    score: float
    snippet: str
    created_at: datetime
    updated_at: datetime


class SearchPage(BaseModel):
    query: str
    items: list[SearchHit]
    next_cursor: str | None


class BulkResult(BaseModel):
    line: int
    status: int
    document_id: str | None = None
    version: int | None = None
    content_hash: str | None = None
    created: bool | None = None
    error: str | None = None


class SpaceCreate(BaseModel):
    name: SpaceName
    description: StorableText = Field("", max_length=500)


class SpaceOut(BaseModel):
    name: str
    description: str
    created_by: str
    created_at: UtcDateTime  # SQLite gives its times back without a zone
    role: Role | None = Field(None, description="yours there; admin for space admins")


class SpaceList(BaseModel):
    items: list[SpaceOut]


class Grant(BaseModel):
    role: Role


class MemberOut(BaseModel):
    space: str
    subject: str
    role: Role
    granted_by: str
    granted_at: UtcDateTime


class MemberList(BaseModel):
    space: str
    items: list[MemberOut]


class Membership(BaseModel):
    name: str
    role: Role


class MySpaces(BaseModel):
    """A caller's own memberships (`default`'s open role is not one)."""

    subject: str
    spaces: list[Membership]
