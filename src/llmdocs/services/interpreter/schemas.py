"""Request and response models of the interpreter."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, Field, field_validator

from llmdocs.rendering import normalize_format


class QueryIn(BaseModel):
    model_config = {"extra": "forbid", "populate_by_name": True}

    query: str = Field(min_length=1, max_length=4000)
    format: str | None = Field(None, validation_alias=AliasChoices("format", "output_format"))
    user_id: str = Field("anonymous", min_length=1, max_length=200)
    session_id: str | None = Field(None, min_length=1, max_length=100,
                                   pattern=r"^[A-Za-z0-9._:-]+$")
    run_async: bool = Field(False, alias="async")
    spec_document_id: str | None = Field(None, max_length=36)
    spec_url: str | None = Field(None, max_length=2000)
    document_ids: list[str] = Field(default_factory=list, max_length=20)

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
    document_id: str | None = None
    filename: str | None = None
    format: str | None = None
    download_url: str | None = None
    provenance_url: str | None = None
    provenance: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    documents: list[dict[str, Any]] | None = None  # list / search answers
