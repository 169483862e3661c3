"""Request and response models of the interpreter."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator

from llmdocs.core.db import StorableText
from llmdocs.core.spaces import DEFAULT_SPACE
from llmdocs.formats import normalize_format
from llmdocs.services.orchestrator.schemas import EntityId, Failure, SpaceName, SpecUrl

BOTH_FORMATS = "give format or output_format, not both"


def _same_format(first: Any, second: Any) -> bool:
    """Whether two spellings name one format (`md` and `markdown`); an unknown one is
    left to the field's own check."""
    try:
        return normalize_format(str(first)) == normalize_format(str(second))
    except ValueError:
        return bool(first == second)


class QueryIn(BaseModel):
    model_config = {"extra": "forbid", "populate_by_name": True}

    query: StorableText = Field(min_length=1, max_length=4000)
    format: str | None = Field(None, validation_alias=AliasChoices("format", "output_format"))
    # whom the request is for: the token's subject when omitted; only services and
    # queries:admin holders may name another user
    user_id: StorableText | None = Field(None, min_length=1, max_length=200)
    session_id: str | None = Field(None, min_length=1, max_length=100,
                                   pattern=r"^[A-Za-z0-9._:-]+$")
    run_async: bool = Field(False, alias="async", strict=True)  # true or false, not "yes"
    spec_document_id: EntityId | None = None
    spec_url: SpecUrl | None = None
    document_ids: list[EntityId] = Field(default_factory=list, max_length=20)
    # where the run reads documents and stores the one it makes (taking the right to
    # write there); when left out, a session's follow-up stays in its request's space,
    # anything else is in `default`
    space: SpaceName | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_format(cls, data: Any) -> Any:
        """`output_format` is `format`'s alias: both at once only when they agree."""
        if isinstance(data, dict) and "format" in data and "output_format" in data:
            if not _same_format(data["format"], data["output_format"]):
                raise ValueError(BOTH_FORMATS)
            data = {k: v for k, v in data.items() if k != "output_format"}
        return data

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the query is empty")
        return value.strip()

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        return normalize_format(value) if value is not None else None


class RefreshIn(BaseModel):
    """A refresh's options: the body may be empty (`{}`) or left out."""

    model_config = {"extra": "forbid", "populate_by_name": True}

    run_async: bool = Field(False, alias="async", strict=True)


class InterpretOut(BaseModel):
    intent: str | None
    confidence: float
    entities: dict[str, Any]
    method: str
    follow_up: bool
    workflow: str | None
    workflow_input: dict[str, Any] | None
    missing: list[str]


class ExecutionOut(BaseModel):
    execution_id: str
    run_id: str | None
    status: str
    intent: str | None
    query: str
    session_id: str | None
    space: str = DEFAULT_SPACE
    document_id: str | None = None
    filename: str | None = None
    format: str | None = None
    download_url: str | None = None
    provenance_url: str | None = None
    provenance: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    failure: Failure | None = None  # why a failed execution failed (see the run's)
    documents: list[dict[str, Any]] | None = None  # list / search answers
    # the request that started it: the log-collector's /correlations/{id} traces it
    correlation_id: str | None = None
