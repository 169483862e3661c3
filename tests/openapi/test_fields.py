"""Schemas flattened into fields: nested objects and arrays as `a.b[].c`, allOf merged,
oneOf listed, recursion cut and said, every constraint kept."""

from __future__ import annotations

from typing import Any

from llmdocs.openapi import SpecBounds
from llmdocs.openapi.fields import FIELDS_PER_SCHEMA, Walker
from llmdocs.openapi.reference import build_reference

SCHEMAS: dict[str, Any] = {
    "Address": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "minLength": 1, "maxLength": 80},
        "lines": {"type": "array", "maxItems": 3, "items": {"type": "string"}}}},
    "Base": {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string", "format": "uuid", "readOnly": True}}},
    "Person": {"allOf": [{"$ref": "#/components/schemas/Base"}, {
        "type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "pattern": "^[A-Z]"},
            "age": {"type": "integer", "minimum": 0, "exclusiveMaximum": True,
                    "maximum": 150, "nullable": True},
            "homes": {"type": "array", "items": {"$ref": "#/components/schemas/Address"}},
            "parent": {"$ref": "#/components/schemas/Person"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Person"}},
            "pet": {"oneOf": [{"$ref": "#/components/schemas/Address"},
                              {"type": "string"}]}}}]},
}


def walker(schemas: dict[str, Any]) -> Walker:
    return Walker({"components": {"schemas": schemas}}, 24, 100_000)


def test_nested_objects_arrays_and_all_of_are_flattened() -> None:
    fields = {f.name: f for f in walker(SCHEMAS).fields(
        {"$ref": "#/components/schemas/Person"})}
    assert list(fields) == ["id", "name", "age", "homes", "homes[].city", "homes[].lines",
                            "parent", "children", "pet"]
    assert fields["id"].required and fields["id"].read_only and fields["id"].format == "uuid"
    assert fields["name"].required and fields["name"].pattern == "^[A-Z]"
    age = fields["age"]
    assert (age.minimum, age.maximum, age.exclusive_maximum, age.nullable) == (0, 150, True,
                                                                               True)
    city = fields["homes[].city"]
    assert city.required and (city.min_length, city.max_length) == (1, 80)
    assert fields["homes[].lines"].max_items == 3
    assert fields["homes"].type == "array of Address"


def test_recursion_is_cut_and_said() -> None:
    fields = {f.name: f for f in walker(SCHEMAS).fields(
        {"$ref": "#/components/schemas/Person"})}
    assert fields["parent"].note == "recursive: see `Person`"
    assert fields["children"].note == "recursive: see `Person`"
    assert fields["children"].type == "array of Person"
    assert not any(name.startswith(("parent.", "children[]")) for name in fields)


def test_one_of_is_listed_by_name_or_type() -> None:
    [pet] = [f for f in walker(SCHEMAS).fields({"$ref": "#/components/schemas/Person"})
             if f.name == "pet"]
    assert pet.variant_kind == "one of" and pet.variants == ["Address", "string"]


def test_openapi_3_1_bounds_and_null_types() -> None:
    facts = walker({}).facts({"type": ["integer", "null"], "exclusiveMinimum": 5,
                              "const": 7}, ())[0]
    assert facts.type == "integer" and facts.nullable
    assert (facts.minimum, facts.exclusive_minimum, facts.enum) == (5, True, [7])


def test_a_schema_too_wide_is_cut_with_a_warning() -> None:
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"}
                                             for i in range(FIELDS_PER_SCHEMA + 50)}}
    cutting = walker({})
    assert len(cutting.fields(wide)) == FIELDS_PER_SCHEMA
    assert any("fields; cut" in w for w in cutting.warnings)


def test_a_reference_bomb_stays_bounded() -> None:
    """Ten schemas each holding the next ten times: 10^10 fields if followed blindly."""
    schemas = {f"S{i}": {"type": "object", "properties": {
        f"p{j}": {"$ref": f"#/components/schemas/S{i + 1}"} for j in range(10)}}
        for i in range(10)}
    schemas["S10"] = {"type": "string"}
    doc = {"openapi": "3.0.3", "info": {"title": "bomb", "version": "1"},
           "components": {"schemas": schemas},
           "paths": {"/x": {"post": {"requestBody": {"content": {"application/json": {
               "schema": {"$ref": "#/components/schemas/S0"}}}},
               "responses": {"200": {"description": "ok"}}}}}}
    reference = build_reference(doc, SpecBounds())
    total = sum(len(s.fields) for s in reference.schemas) + len(
        reference.operations[0].request_body.fields if reference.operations[0].request_body
        else [])
    assert total <= 12 * FIELDS_PER_SCHEMA and reference.warnings
