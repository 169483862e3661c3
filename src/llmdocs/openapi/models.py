"""The capability models: an OpenAPI operation as the registry stores it and tools read it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from llmdocs.core.bounded import StorableJson
from llmdocs.core.db import StorableText

ParamLocation = Literal["path", "query", "header", "cookie"]


class Parameter(BaseModel):
    name: StorableText = Field(min_length=1, max_length=200)
    location: ParamLocation
    required: bool = False
    description: StorableText = ""
    schema_: Annotated[dict[str, Any], StorableJson] = Field(default_factory=dict,
                                                             alias="schema")

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class RequestBody(BaseModel):
    content_type: StorableText = "application/json"
    required: bool = False
    description: StorableText = ""
    schema_: Annotated[dict[str, Any], StorableJson] = Field(default_factory=dict,
                                                             alias="schema")

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class Operation(BaseModel):
    """One thing a service can do: an OpenAPI operation with its `$ref`s resolved."""

    operation_id: StorableText = Field(min_length=1, max_length=200)
    method: Literal["get", "put", "post", "delete", "patch", "head", "options", "trace"]
    path: StorableText = Field(min_length=1, max_length=2000)
    summary: StorableText = ""
    description: StorableText = ""
    tag: StorableText = "default"
    resource: StorableText = ""
    deprecated: bool = False
    parameters: list[Parameter] = Field(default_factory=list)
    request_body: RequestBody | None = None
    responses: Annotated[dict[str, dict[str, Any]], StorableJson] = Field(default_factory=dict)
    scopes: list[StorableText] = Field(default_factory=list)
