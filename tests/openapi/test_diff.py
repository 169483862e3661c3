"""The API diff on what must not count as a change (the same spec in other shapes), on
shared and recursive schemas, and on specs it must refuse with the reason."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from llmdocs.openapi import SpecError
from llmdocs.openapi.diff import diff
from openapi.diffcorpus import Spec, follow, operations, parsed, sources

RAW = sources()
SPECS = {name: parsed(raw) for name, raw in RAW.items()}


def shuffled(node: Any, rng: random.Random) -> Any:
    """Every object's keys in another order; lists keep theirs (their order means)."""
    if isinstance(node, dict):
        keys = list(node)
        rng.shuffle(keys)
        return {k: shuffled(node[k], rng) for k in keys}
    if isinstance(node, list):
        return [shuffled(v, rng) for v in node]
    return node


def inlined(spec: Spec) -> Spec:
    """Each operation's `$ref`s (parameters, bodies, responses, schemas) replaced by what
    they point at, one level deep."""
    out = copy.deepcopy(spec)

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return copy.deepcopy(follow(out, node))
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    for path, item in out["paths"].items():
        out["paths"][path] = inline(item)
    return out


def extracted(spec: Spec) -> Spec:
    """Each inline body schema moved to components/schemas and referred to by `$ref`."""
    out = copy.deepcopy(spec)
    schemas = out.setdefault("components", {}).setdefault("schemas", {})
    for n, (_, _, op) in enumerate(operations(out)):
        holders = [op.get("requestBody", {}), *op.get("responses", {}).values()]
        for i, holder in enumerate(holders):
            for media in (holder.get("content") or {}).values():
                schema = media.get("schema")
                if isinstance(schema, dict) and "$ref" not in schema:
                    schemas[f"Zz{n}_{i}"] = schema
                    media["schema"] = {"$ref": f"#/components/schemas/Zz{n}_{i}"}
    return out


EQUIVALENTS: dict[str, Callable[[str], Spec]] = {
    "as JSON": lambda name: parsed(json.dumps(SPECS[name]).encode()),
    "as YAML": lambda name: parsed(yaml.safe_dump(SPECS[name]).encode()),
    "keys shuffled": lambda name: shuffled(SPECS[name], random.Random(name)),
    "refs inlined": lambda name: inlined(SPECS[name]),
    "schemas extracted to refs": lambda name: extracted(SPECS[name]),
}


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("shape", sorted(EQUIVALENTS))
def test_the_same_spec_in_another_shape_has_no_changes(name: str, shape: str) -> None:
    other = EQUIVALENTS[shape](name)
    assert diff(SPECS[name], other).changes == []
    assert diff(other, SPECS[name]).changes == []


def test_renaming_a_path_parameter_is_no_change() -> None:
    head = copy.deepcopy(SPECS["user-service"])
    item = head["paths"].pop("/users/{user_id}")
    for param in item["parameters"]:  # shared by the path's operations, by $ref
        if follow(head, param).get("name") == "user_id":
            follow(head, param)["name"] = "id"
    head["paths"]["/users/{id}"] = item
    assert diff(SPECS["user-service"], head).changes == []


def test_a_change_in_a_shared_schema_is_reported_on_every_operation_using_it() -> None:
    base = SPECS["user-service"]
    head = copy.deepcopy(base)
    del head["components"]["schemas"]["User"]["properties"]["email"]
    found = diff(base, head)
    users = {f"{m.upper()} {p}" for p, m, op in operations(base)
             if "#/components/schemas/User" in json.dumps(op.get("responses"))}
    assert len(users) >= 3
    assert {c.operation for c in found.changes} == users
    assert {(c.kind, c.breaking, c.location) for c in found.changes} == {
        ("response.field_removed", True, "/components/schemas/User/properties/email")}
    assert found.summary.breaking == len(found.changes) == len(users)


def recursive(children_type: str) -> Spec:
    return {"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {"/nodes": {"get": {"responses": {"200": {
                "description": "A tree.", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Node"}}}}}}}},
            "components": {"schemas": {"Node": {"type": "object", "properties": {
                "name": {"type": children_type},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                "parent": {"$ref": "#/components/schemas/Node"}}}}}}


def test_a_recursive_schema_is_compared_once_and_its_change_found() -> None:
    assert diff(recursive("string"), recursive("string")).changes == []
    found = diff(recursive("string"), recursive("integer"))
    assert [(c.kind, c.location, c.message) for c in found.changes] == [
        ("response.field_type", "/components/schemas/Node/properties/name/type",
         "Response 200 field `name` changed type from string to integer")]


def spec_with(schema: Any, **components: Any) -> bytes:
    return json.dumps({"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
                       "paths": {"/a": {"post": {"requestBody": {"content": {
                           "application/json": {"schema": schema}}},
                           "responses": {"200": {"description": "OK."}}}}},
                       "components": {"schemas": components}}).encode()


@pytest.mark.parametrize(("raw", "reason"), [
    (b"openapi: [1, 2", "neither JSON nor YAML"),
    (b'{"swagger": "1.2"}', "Swagger 1.2 is not supported"),
    (b"title: not an api", "not an OpenAPI 3.0/3.1 document"),
    (b'{"openapi": "3.0.3", "x": ' + b'{"a": ' * 300 + b"1" + b"}" * 301, "nests deeper"),
    (spec_with({"$ref": "#/components/schemas/A"}, A={"$ref": "#/components/schemas/B"},
               B={"$ref": "#/components/schemas/A"}), "$ref cycle"),
    (spec_with({"$ref": "other.yaml#/User"}), "leaves the document"),
    (spec_with({"$ref": "#/components/schemas/Missing"}), "points nowhere"),
], ids=["unparseable", "old swagger", "not openapi", "too deep", "ref cycle",
        "external ref", "dangling ref"])
def test_a_bad_spec_is_refused_naming_the_problem(raw: bytes, reason: str) -> None:
    good = SPECS["user-service"]
    with pytest.raises(SpecError, match=reason.replace("$", r"\$")):
        diff(good, parsed(raw))
    with pytest.raises(SpecError, match=reason.replace("$", r"\$")):
        diff(parsed(raw), good)


def test_the_answer_has_the_issue_shape() -> None:
    head = copy.deepcopy(SPECS["user-service"])
    del head["paths"]["/sessions/current"]["delete"]
    answer = diff(SPECS["user-service"], head).model_dump(mode="json")
    assert answer == {"changes": [{
        "kind": "operation.removed", "operation": "DELETE /sessions/current",
        "location": "/paths/~1sessions~1current/delete", "breaking": True,
        "message": "DELETE /sessions/current was removed", "before": "DELETE /sessions/current",
        "after": None}], "summary": {"breaking": 1, "non_breaking": 0}}


def odd(schema: Any, extra: dict[str, Any] | None = None) -> Spec:
    raw: Spec = json.loads(spec_with({"$ref": "#/components/schemas/A"}, A=schema))
    raw["paths"]["/a"]["post"].update(extra or {})
    return raw


@pytest.mark.parametrize(("before", "after"), [
    (odd({"maximum": "100"}), odd({"maximum": 50})),
    (odd({"enum": [{"1": "a"}, {"b": [1, {}]}]}), odd({"enum": [{"b": [1, {}]}]})),
    (odd({"properties": "not an object", "required": "x"}), odd({"properties": {}})),
    (odd({"type": [{"x": 1}, None]}), odd({"type": "string"})),
    (odd({"allOf": [{"$ref": "#/components/schemas/A"}]}), odd({"allOf": []})),
    (odd({}, {"parameters": ["junk", 3, {"in": "query"}]}), odd({}, {"parameters": None})),
    (odd({}, {"responses": "none"}), odd({}, {"responses": {"200": "no"}})),
    (odd({}, {"security": "all"}), odd({}, {"security": [{"key": "x"}, 1]})),
], ids=["a bound as text", "enum of objects", "properties not an object", "odd types",
        "allOf of itself", "odd parameters", "odd responses", "odd security"])
def test_odd_but_parseable_specs_are_compared_without_failing(before: Spec,
                                                              after: Spec) -> None:
    found = diff(before, after)  # an answer, whatever it finds, that JSON can carry
    assert json.loads(found.model_dump_json())["summary"] == found.summary.model_dump()


def diamonds(leaf_type: str, depth: int = 40) -> Spec:
    """S0 whose two fields are both S1, whose two are S2, ...: 2**depth paths to the leaf."""
    schemas: dict[str, Any] = {f"S{i}": {"type": "object", "properties": {
        "left": {"$ref": f"#/components/schemas/S{i + 1}"},
        "right": {"$ref": f"#/components/schemas/S{i + 1}"}}} for i in range(depth)}
    schemas[f"S{depth}"] = {"type": leaf_type}
    return {"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
            "paths": {"/d": {"get": {"responses": {"200": _ok("S0")}}}},
            "components": {"schemas": schemas}}


def _ok(name: str) -> dict[str, Any]:
    return {"description": "OK.", "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{name}"}}}}


def test_a_change_reached_by_many_paths_is_said_once_without_walking_them_all() -> None:
    found = diff(diamonds("string"), diamonds("integer"))
    assert [(c.kind, c.location) for c in found.changes] == [
        ("response.field_type", "/components/schemas/S40/type")]
    assert found.changes[0].message.startswith("Response 200 field `left.left.left")


def test_variants_in_another_order_are_no_change_and_a_changed_one_is_found() -> None:
    def spec(*variants: Any) -> Spec:
        return odd({"oneOf": list(variants)}, None) | {"components": {"schemas": {
            "A": {"oneOf": list(variants)}, "Cat": {"type": "object"},
            "Dog": {"type": "object"}}}}

    cat, dog = {"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}
    assert diff(spec(cat, dog, {"type": "string"}), spec({"type": "string"}, dog, cat)
                ).changes == []
    found = diff(spec(cat, {"type": "string"}), spec({"type": "integer"}, cat))
    assert [(c.kind, c.location) for c in found.changes] == [
        ("request.field_type", "/components/schemas/A/oneOf/0/type")]
