"""Request and response models of the analysis service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmdocs.core.bounded import StorableJson
from llmdocs.core.db import INT4_MAX, StorableText, UtcDateTime
from llmdocs.core.spaces import DEFAULT_SPACE
from llmdocs.openapi.diff import Change, Diff

# an id goes into a doc-store path: letters, digits and dashes only
from llmdocs.services.orchestrator.schemas import EntityId as DocumentId
from llmdocs.services.orchestrator.schemas import SpecUrl

# what a finding's source may be: a doc-store id, a registered service's name, a URL
SOURCE = r"^(docstore:[A-Za-z0-9-]{1,36}|service:[a-z0-9][a-z0-9._-]{0,99}|url:https?://\S+)$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoredSpec(_Strict):
    """A spec in the doc-store (its latest version unless `version` is given)."""

    document_id: DocumentId
    version: int | None = Field(None, ge=1, le=INT4_MAX)


class UrlSpec(_Strict):
    """A spec fetched under the rules of a run's `spec_url`."""

    url: SpecUrl


class InlineSpec(_Strict):
    spec: Annotated[dict[str, Any], StorableJson]


class TextSpec(_Strict):
    """A spec as YAML or JSON text."""

    content: StorableText


SpecRef = StoredSpec | UrlSpec | InlineSpec | TextSpec


class DiffIn(_Strict):
    base: SpecRef
    head: SpecRef


class StoredDocument(_Strict):
    document_id: DocumentId
    version: int | None = Field(None, ge=1, le=INT4_MAX)


class TextDocument(_Strict):
    """Markdown to check, as text."""

    content: StorableText


class CheckIn(_Strict):
    document: StoredDocument | TextDocument
    spec: SpecRef


class Unsupported(BaseModel):
    kind: str
    claim: str
    operation: str | None
    line: int
    excerpt: str


class Scores(BaseModel):
    completeness: float
    truthfulness: float


class CheckOut(BaseModel):
    """What the document claims that the spec does not support, and what it misses."""

    claims: int
    supported: int
    unsupported: list[Unsupported]
    missing: list[str]
    scores: Scores


class ChangeIn(_Strict):
    """A source seen to change (a refresh that fetched a `spec_url` anew): `source` is
    `url:<address>`, `service:<name>` or `docstore:<id>`."""

    source: str = Field(max_length=2100, pattern=SOURCE)
    base: SpecRef
    head: SpecRef


class Affected(BaseModel):
    """A document built from the source, the version found stale, and the changes that
    touch what it documents."""

    document_id: str
    version: int
    space: str = DEFAULT_SPACE
    changes: list[Change]


class FindingOut(BaseModel):
    id: str
    source: str
    space: str | None = None  # a stored spec's; none for a URL or a service
    base: str  # a doc-store version number, or the spec's canonical SHA-256
    head: str
    diff: Diff
    documents: list[Affected]
    status: Literal["open", "closed"]
    reason: str | None  # why it is still open
    # the version each document was regenerated as (all of them: the finding is closed)
    closed_by: dict[str, int] = Field(default_factory=dict)
    created_at: UtcDateTime
    updated_at: UtcDateTime
