"""Examples: the spec's own first, else made from the schema and valid against it; none
shown (and the operation says so) when no valid one can be made."""

from __future__ import annotations

import json
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from llmdocs.openapi import SpecBounds, parse_spec
from llmdocs.openapi.examples import Direction, Examples
from llmdocs.openapi.fields import Walker
from llmdocs.openapi.markdown import operation_block
from llmdocs.openapi.reference import build_reference


def spec(body: dict[str, Any], response: dict[str, Any] | None = None,
         schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"requestBody": {"content": {"application/json": body}},
                          "responses": {"200": {"description": "ok", **(
                              {"content": {"application/json": response}} if response
                              else {})}}}
    return {"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
            "components": {"schemas": schemas or {}}, "paths": {"/things": {"post": op}}}


def test_the_spec_s_examples_come_first() -> None:
    doc = spec({"schema": {"type": "object"}, "example": {"from": "media"}},
               {"schema": {"type": "object"},
                "examples": {"first": {"value": {"from": "examples"}}, "second": {}}})
    [op] = build_reference(doc, SpecBounds()).operations
    assert op.request_body and op.request_body.example.origin == "spec"
    assert op.request_body.example.value == {"from": "media"}
    body = op.responses[0].body
    assert body and body.example.value == {"from": "examples"}
    schema_example = spec({"schema": {"type": "string", "example": "from the schema"}})
    [op] = build_reference(schema_example, SpecBounds()).operations
    assert op.request_body and op.request_body.example.value == "from the schema"


SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["id", "when", "mail", "size", "ratio", "kind", "tags",
                                   "name", "secret"],
    "properties": {
        "id": {"type": "string", "format": "uuid", "readOnly": True},
        "when": {"type": "string", "format": "date-time"},
        "day": {"type": "string", "format": "date"},
        "mail": {"type": "string", "format": "email"},
        "site": {"type": "string", "format": "uri"},
        "size": {"type": "integer", "minimum": 10, "maximum": 20, "multipleOf": 5},
        "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 2},
        "kind": {"type": "string", "enum": ["big", "small"]},
        "tags": {"type": "array", "minItems": 2, "items": {"type": "string",
                                                           "maxLength": 3}},
        "name": {"type": "string", "minLength": 12},
        "maybe": {"type": "string", "nullable": True, "default": None},
        "secret": {"type": "string", "writeOnly": True}}}


@pytest.mark.parametrize("direction", ["request", "response"])
def test_made_examples_are_valid_against_the_schema(direction: Direction) -> None:
    made = Examples({"openapi": "3.0.3"}, Walker({}, 24, 10_000)).make(SCHEMA, direction)
    assert ("id" in made) is (direction == "response")  # read-only: not sent
    assert ("secret" in made) is (direction == "request")  # write-only: not answered
    assert made["size"] in (10, 15, 20) and made["ratio"] > 2 and made["kind"] == "big"
    assert len(made["tags"]) == 2 and len(made["name"]) >= 12
    assert made["maybe"] is None
    checked = {**SCHEMA, "required": [r for r in SCHEMA["required"]
                                      if r != ("id" if direction == "request" else "secret")]}
    checked["properties"] = {**SCHEMA["properties"], "maybe": {"type": ["string", "null"]}}
    jsonschema.Draft4Validator(checked, format_checker=jsonschema.FormatChecker()).validate(
        made)


@pytest.mark.parametrize(("schema", "reason"), [
    ({"$ref": "#/components/schemas/Loop"}, "recursive"),
    ({"type": "string", "pattern": "^[a-z]{3}$"}, "pattern"),
    ({"type": "string", "format": "date", "maxLength": 4}, "length"),
    ({"type": "string", "enum": ["a"], "minLength": 3}, "not valid"),
])
def test_no_example_when_none_can_be_valid(schema: dict[str, Any], reason: str) -> None:
    loop = {"type": "object", "required": ["next"],
            "properties": {"next": {"$ref": "#/components/schemas/Loop"}}}
    doc = spec({"schema": schema}, {"schema": schema}, {"Loop": loop})
    reference = build_reference(doc, SpecBounds())
    [op] = reference.operations
    assert op.request_body and op.request_body.example.origin == "none"
    assert reason in op.request_body.example.reason
    assert op.examples_missing == ["request", "response 200"]
    block = operation_block(op, reference)
    assert "**Example response**" not in block and " -d " not in block
    assert "No valid example could be made for the request and the response 200" in block


def test_an_optional_recursion_is_left_out_not_failed() -> None:
    tree = {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}},
        "parent": {"$ref": "#/components/schemas/Tree"}}}
    doc = spec({"schema": {"$ref": "#/components/schemas/Tree"}}, schemas={"Tree": tree})
    [op] = build_reference(doc, SpecBounds()).operations
    assert op.request_body and op.request_body.example.value == {"name": "string",
                                                                 "children": []}


def test_a_one_of_of_required_sets_gets_an_example_matching_one() -> None:
    """ReadMe's `POST /docs` body: a title and either a category or a category slug."""
    spec = parse_spec(json.dumps({
        "openapi": "3.0.3", "info": {"title": "t", "version": "1"},
        "paths": {"/docs": {"post": {"requestBody": {"content": {"application/json": {
            "schema": {"type": "object", "properties": {
                "title": {"type": "string"}, "category": {"type": "string"},
                "categorySlug": {"type": "string"}},
                "oneOf": [{"required": ["title", "category"]},
                          {"required": ["title", "categorySlug"]}]}}}},
            "responses": {"201": {"description": "made"}}}}}}).encode(), SpecBounds())
    body = build_reference(spec, SpecBounds()).operations[0].request_body
    assert body is not None and body.example.origin == "generated"
    assert body.example.value == {"title": "string", "category": "string"}


def test_a_schema_s_own_example_is_the_spec_s_even_when_it_breaks_its_schema() -> None:
    """Jupyter Server's `GET /api/me` example has `avatar_url: null` for a string."""
    spec = parse_spec(json.dumps({
        "openapi": "3.0.3", "info": {"title": "t", "version": "1"},
        "paths": {"/me": {"get": {"responses": {"200": {"description": "me", "content": {
            "application/json": {"schema": {
                "type": "object", "properties": {"avatar_url": {"type": "string"}},
                "example": {"avatar_url": None}}}}}}}}}}).encode(), SpecBounds())
    [answer] = build_reference(spec, SpecBounds()).operations[0].responses
    assert answer.body is not None and answer.body.example.origin == "spec"
    assert answer.body.example.value == {"avatar_url": None}
