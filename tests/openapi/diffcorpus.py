"""The mutation corpus of the API diff: real specs, each rule applied to a copy.

A mutation first `prepare`s the spec the same way for both versions (one operation's
request and success bodies given schemas of their own, with a field of each sort the
rules need), then `mutate`s the head copy alone; the diff must find exactly its kind."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmdocs.examples import user_service_spec
from llmdocs.openapi import Resolver, SpecBounds, parse_spec
from llmdocs.openapi.analyse import METHODS

HERE = Path(__file__).parent
DATA = HERE.parent / "data" / "openapi"
USPTO = Path("/work/shared/corpus/openapi/uspto.yaml")
Spec = dict[str, Any]
Getter = Callable[[Spec], dict[str, Any]]


def sources() -> dict[str, bytes]:
    """The real specs: the example, the shared corpus, the test data (2.0, 3.0, 3.1)."""
    found = {"user-service": user_service_spec().encode(), "uspto": USPTO.read_bytes(),
             "petstore-v2": (HERE / "petstore-v2.json").read_bytes()}
    found |= {path.stem: path.read_bytes() for path in sorted(DATA.glob("*.yaml"))}
    return found


def parsed(raw: bytes) -> Spec:
    return parse_spec(raw, SpecBounds())


def follow(spec: Spec, node: Any) -> Any:
    return Resolver(spec, 24, 10**6).follow(node, "")[0]


def operations(spec: Spec) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, item[method]) for path, item in spec["paths"].items()
            for method in METHODS if isinstance(item.get(method), dict)]


def target(spec: Spec) -> dict[str, Any]:
    """The operation the mutations change: the first with a success response."""
    return next(op for _, _, op in operations(spec)
                if any(str(s).startswith("2") for s in op.get("responses", {})))


def success(op: dict[str, Any]) -> dict[str, Any]:
    status = next(s for s in op["responses"] if str(s).startswith("2"))
    return op["responses"][status]  # type: ignore[no-any-return]


def own_schema(spec: Spec, holder: dict[str, Any]) -> dict[str, Any]:
    """`holder`'s JSON schema, made its own (no longer shared) object with properties."""
    content = holder.setdefault("content", {})
    media = content.setdefault("application/json", {})
    schema: dict[str, Any] = copy.deepcopy(follow(spec, media.get("schema") or {}))
    if "properties" not in schema:
        schema = {"type": "object", "properties": {}}
    schema["type"] = "object"
    schema["properties"].update({
        "zz_text": {"type": "string", "maxLength": 40, "description": "Text."},
        "zz_count": {"type": "integer", "minimum": 1, "maximum": 100},
        "zz_kind": {"type": "string", "enum": ["a", "b", "c"]},
        "zz_must": {"type": "string"},
        "zz_map": {"type": "object", "additionalProperties": {"type": "string"}}})
    schema["required"] = [*schema.get("required", []), "zz_must"]
    media["schema"] = schema
    for other in list(content):  # one media type, so one place each change is seen
        if other != "application/json":
            del content[other]
    return schema


def prepare(spec: Spec) -> None:
    """The target operation gets bodies of its own and a query parameter of each sort."""
    op = target(spec)
    body = follow(spec, op.get("requestBody")) if "requestBody" in op else {}
    op["requestBody"] = copy.deepcopy(body) or {"content": {}}
    own_schema(spec, op["requestBody"])
    status = next(s for s in op["responses"] if str(s).startswith("2"))
    op["responses"][status] = copy.deepcopy(follow(spec, op["responses"][status]))
    own_schema(spec, op["responses"][status])
    op["parameters"] = [*op.get("parameters", []),
                        {"name": "zz_limit", "in": "query", "schema": {
                            "type": "integer", "maximum": 50}},
                        {"name": "zz_order", "in": "query", "required": True, "schema": {
                            "type": "string", "enum": ["asc", "desc"]}}]


def request(spec: Spec) -> dict[str, Any]:
    return target(spec)["requestBody"]["content"]["application/json"][  # type: ignore
        "schema"]


def response(spec: Spec) -> dict[str, Any]:
    return success(target(spec))["content"]["application/json"]["schema"]  # type: ignore


def request_fields(spec: Spec) -> dict[str, Any]:
    return request(spec)["properties"]  # type: ignore[no-any-return]


def response_fields(spec: Spec) -> dict[str, Any]:
    return response(spec)["properties"]  # type: ignore[no-any-return]


def param(spec: Spec, name: str) -> dict[str, Any]:
    return next(p for p in target(spec)["parameters"] if p.get("name") == name)


def _remove_operation(spec: Spec) -> None:
    path, method, _ = operations(spec)[-1]
    del spec["paths"][path][method]


def _secure(spec: Spec) -> None:
    target(spec)["security"] = [{"zz_key": []}]


def _alternative(spec: Spec) -> None:
    target(spec)["security"].append({"zz_other": []})


def _shared_security(spec: Spec) -> None:
    target(spec)["security"] = [{"zz_key": []}]


@dataclass(frozen=True)
class Mutation:
    name: str
    kind: str
    breaking: bool
    mutate: Callable[[Spec], None]
    setup: Callable[[Spec], None] = lambda spec: None  # more of `prepare`, on both


def _set(getter: Callable[[Spec], dict[str, Any]], key: str, value: Any
         ) -> Callable[[Spec], None]:
    return lambda spec: getter(spec).__setitem__(key, value)


def _drop(getter: Callable[[Spec], dict[str, Any]], key: str) -> Callable[[Spec], None]:
    return lambda spec: getter(spec).pop(key)


def _field(getter: Callable[[Spec], dict[str, Any]], name: str
           ) -> Callable[[Spec], dict[str, Any]]:
    return lambda spec: getter(spec)["properties"][name]


def _required(getter: Callable[[Spec], dict[str, Any]], name: str, on: bool
              ) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        schema = getter(spec)
        schema["required"] = [r for r in schema.get("required", []) if r != name] + (
            [name] if on else [])
    return change


def _op(key: str, value: Any) -> Callable[[Spec], None]:
    return lambda spec: target(spec).__setitem__(key, value)


def _new_param(required: bool) -> Callable[[Spec], None]:
    return lambda spec: target(spec)["parameters"].append(
        {"name": "zz_new", "in": "header", "required": required, "schema": {"type": "string"}})


def _enum(getter: Callable[[Spec], dict[str, Any]], values: list[str]
          ) -> Callable[[Spec], None]:
    return _set(getter, "enum", values)


def P_LIMIT(spec: Spec) -> dict[str, Any]:  # read as a constant, like R_TEXT below
    return param(spec, "zz_limit")["schema"]  # type: ignore[no-any-return]


def P_ORDER(spec: Spec) -> dict[str, Any]:
    return param(spec, "zz_order")["schema"]  # type: ignore[no-any-return]


R_TEXT, R_COUNT, R_KIND, R_MAP = (_field(request, n) for n in (
    "zz_text", "zz_count", "zz_kind", "zz_map"))
S_TEXT, S_COUNT, S_KIND = (_field(response, n) for n in ("zz_text", "zz_count", "zz_kind"))


def _add_status(spec: Spec) -> None:
    target(spec)["responses"]["418"] = {"description": "A teapot."}


def _drop_success(spec: Spec) -> None:
    op = target(spec)
    op["responses"] = {k: v for k, v in op["responses"].items() if not str(k).startswith("2")}


def _other_status(spec: Spec) -> None:
    target(spec)["responses"].setdefault("default", {"description": "Something else."})


def _new_operation(spec: Spec) -> None:
    spec["paths"]["/zz-new"] = {"get": {"responses": {"200": {"description": "OK."}}}}


def _drop_body(spec: Spec) -> None:
    del target(spec)["requestBody"]


def _xml_too(spec: Spec) -> None:
    body = target(spec)["requestBody"]["content"]
    body["application/xml"] = copy.deepcopy(body["application/json"])


def _drop_xml(spec: Spec) -> None:
    del target(spec)["requestBody"]["content"]["application/xml"]


def _new_required(spec: Spec) -> None:
    request(spec)["properties"]["zz_x"] = {"type": "string"}
    request(spec)["required"].append("zz_x")


def _add_body(spec: Spec) -> None:
    target(spec)["requestBody"] = {"content": {"application/json": {"schema": {
        "type": "object"}}}}


def _response_xml(spec: Spec) -> None:
    content = success(target(spec))["content"]
    content["application/xml"] = copy.deepcopy(content["application/json"])


def _header(spec: Spec) -> None:
    success(target(spec))["headers"] = {"X-Zz": {"schema": {"type": "string"}}}


def _drop_server(spec: Spec) -> None:
    spec["servers"].pop()


def _server(spec: Spec) -> None:
    spec["servers"] = [*spec.get("servers", []), {"url": "https://zz.example.com"}]


def _variants(spec: Spec) -> None:
    response(spec)["properties"]["zz_any"] = {"oneOf": [{"type": "string"},
                                                        {"type": "integer"}]}
    request(spec)["properties"]["zz_any"] = {"oneOf": [{"type": "string"},
                                                       {"type": "integer"}]}


def sides(side: str, schema: Getter, fields: Getter, count: Getter) -> list[Mutation]:
    """The field rules both sides have; a required field breaks requests, an optional one
    responses."""
    request = side == "request"
    return [
        Mutation(f"{side} field removed", f"{side}.field_removed", True,
                 _drop(fields, "zz_text")),
        Mutation(f"optional {side} field added", f"{side}.field_added", False,
                 _set(fields, "zz_x", {"type": "string"})),
        Mutation(f"{side} field made required", f"{side}.field_required", request,
                 _required(schema, "zz_text", True)),
        Mutation(f"{side} field made optional", f"{side}.field_optional", not request,
                 _required(schema, "zz_must", False)),
        Mutation(f"{side} field type changed", f"{side}.field_type", True,
                 _set(count, "type", "string"))]


MUTATIONS = [
    Mutation("operation removed", "operation.removed", True, _remove_operation),
    Mutation("operation added", "operation.added", False, _new_operation),
    Mutation("operation deprecated", "operation.deprecated", False, _op("deprecated", True)),
    Mutation("summary changed", "summary.changed", False, _op("summary", "Zz new words.")),
    Mutation("description changed", "description.changed", False,
             _op("description", "Zz new words.")),
    Mutation("required parameter added", "parameter.added", True, _new_param(True)),
    Mutation("optional parameter added", "parameter.added", False, _new_param(False)),
    Mutation("parameter removed", "parameter.removed", True,
             lambda spec: target(spec)["parameters"].pop()),
    Mutation("parameter made required", "parameter.required", True,
             lambda spec: param(spec, "zz_limit").__setitem__("required", True)),
    Mutation("parameter made optional", "parameter.optional", False,
             lambda spec: param(spec, "zz_order").__setitem__("required", False)),
    Mutation("parameter type changed", "parameter.type", True, _set(P_LIMIT, "type", "string")),
    Mutation("parameter type widened", "parameter.type", False,
             _set(P_LIMIT, "type", "number")),
    Mutation("parameter format set", "parameter.type", True, _set(P_LIMIT, "format", "int32")),
    Mutation("parameter maximum lowered", "parameter.constraint", True,
             _set(P_LIMIT, "maximum", 10)),
    Mutation("parameter maximum raised", "parameter.constraint", False,
             _set(P_LIMIT, "maximum", 500)),
    Mutation("parameter default set", "parameter.default", True, _set(P_LIMIT, "default", 5)),
    Mutation("request enum value removed", "enum.value_removed", True,
             _enum(P_ORDER, ["asc"])),
    Mutation("request enum value added", "enum.value_added", False,
             _enum(P_ORDER, ["asc", "desc", "zz"])),
    Mutation("request field enum value removed", "enum.value_removed", True,
             _enum(R_KIND, ["a", "b"])),
    Mutation("response enum value removed", "enum.value_removed", False,
             _enum(S_KIND, ["a", "b"])),
    Mutation("response enum value added", "enum.value_added", True,
             _enum(S_KIND, ["a", "b", "c", "d"])),
    *sides("request", request, request_fields, R_COUNT),
    Mutation("required request field added", "request.field_added", True, _new_required),
    Mutation("request field type widened", "request.field_type", False,
             _set(R_COUNT, "type", "number")),
    Mutation("request maxLength lowered", "request.constraint", True,
             _set(R_TEXT, "maxLength", 10)),
    Mutation("request maxLength dropped", "request.constraint", False,
             _drop(R_TEXT, "maxLength")),
    Mutation("request minimum raised", "request.constraint", True, _set(R_COUNT, "minimum", 5)),
    Mutation("request pattern set", "request.constraint", True,
             _set(R_TEXT, "pattern", "^[a-z]+$")),
    Mutation("request map values retyped", "request.field_type", True,
             _set(R_MAP, "additionalProperties", {"type": "integer"})),
    Mutation("request object closed", "request.constraint", True,
             _set(request, "additionalProperties", False)),
    Mutation("response object closed", "response.constraint", False,
             _set(response, "additionalProperties", False)),
    Mutation("request field made nullable", "request.nullable", False,
             _set(R_TEXT, "nullable", True)),
    Mutation("request default changed", "request.default", True,
             _set(R_COUNT, "default", 3)),
    Mutation("request field description changed", "description.changed", False,
             _set(R_TEXT, "description", "Zz other text.")),
    Mutation("request body removed", "request.body_removed", True, _drop_body),
    Mutation("optional request body added", "request.body_added", False, _add_body,
             _drop_body),
    Mutation("request body made required", "request.body_required", True,
             lambda spec: target(spec)["requestBody"].__setitem__("required", True)),
    Mutation("request media type removed", "request.media_removed", True, _drop_xml,
             _xml_too),
    Mutation("request media type added", "request.media_added", False, _xml_too),
    Mutation("request variant removed", "request.variant_removed", True,
             lambda spec: request(spec)["properties"]["zz_any"]["oneOf"].pop(), _variants),
    Mutation("response variant added", "response.variant_added", True,
             lambda spec: response(spec)["properties"]["zz_any"]["oneOf"].append(
                 {"type": "boolean"}), _variants),
    Mutation("request variant added", "request.variant_added", False,
             lambda spec: request(spec)["properties"]["zz_any"]["oneOf"].append(
                 {"type": "boolean"}), _variants),
    Mutation("response variant removed", "response.variant_removed", False,
             lambda spec: response(spec)["properties"]["zz_any"]["oneOf"].pop(), _variants),
    Mutation("response media type added", "response.media_added", False, _response_xml),
    Mutation("response media type removed", "response.media_removed", True,
             lambda spec: success(target(spec))["content"].pop("application/xml"),
             _response_xml),
    Mutation("success status removed", "response.status_removed", True, _drop_success,
             _other_status),
    Mutation("status added", "response.status_added", False, _add_status),
    *sides("response", response, response_fields, S_COUNT),
    Mutation("response field type narrowed", "response.field_type", False,
             lambda spec: S_COUNT(spec).__setitem__("type", "integer"),
             _set(S_COUNT, "type", "number")),
    Mutation("response maxLength raised", "response.constraint", True,
             _set(S_TEXT, "maxLength", 400)),
    Mutation("response maxLength lowered", "response.constraint", False,
             _set(S_TEXT, "maxLength", 4)),
    Mutation("response field made nullable", "response.nullable", True,
             _set(S_TEXT, "nullable", True)),
    Mutation("response header added", "response.header_added", False, _header),
    Mutation("response header removed", "response.header_removed", True,
             lambda spec: success(target(spec)).pop("headers"), _header),
    Mutation("security required", "security.changed", True, _secure,
             lambda spec: target(spec).__setitem__("security", [])),
    Mutation("security alternative added", "security.changed", False, _alternative,
             _shared_security),
    Mutation("server added", "server.added", False, _server),
    Mutation("server removed", "server.removed", False, _drop_server, _server),
]


def versions(spec: Spec, mutations: list[Mutation]) -> tuple[Spec, Spec]:
    """A prepared copy of `spec` and a copy of that with `mutations` applied."""
    base = copy.deepcopy(spec)
    prepare(base)
    for mutation in mutations:
        mutation.setup(base)
    head = copy.deepcopy(base)
    for mutation in mutations:
        mutation.mutate(head)
    return base, head
