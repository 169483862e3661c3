"""Swagger 2.0 specs are converted to OpenAPI 3.0 on load, not refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmdocs.openapi import SpecBounds, SpecError, analyse, parse_spec
from llmdocs.openapi.swagger import convert


def test_petstore_is_openapi_3_once_loaded(petstore: dict[str, Any]) -> None:
    assert petstore["openapi"] == "3.0.3" and "swagger" not in petstore
    assert petstore["servers"] == [{"url": "https://petstore.swagger.io/v2"},
                                   {"url": "http://petstore.swagger.io/v2"}]
    assert set(petstore["components"]["schemas"]) == {"ApiResponse", "Category", "Pet",
                                                      "Tag", "Order"}
    assert "#/definitions/" not in json.dumps(petstore)  # every $ref points at its new place
    pet = petstore["components"]["schemas"]["Pet"]["properties"]
    assert pet["category"] == {"$ref": "#/components/schemas/Category"}


def test_bodies_forms_responses_and_parameters(petstore: dict[str, Any]) -> None:
    paths = petstore["paths"]
    add = paths["/pet"]["post"]
    assert "parameters" not in add  # the body parameter became the request body
    assert add["requestBody"]["required"] is True
    assert set(add["requestBody"]["content"]) == {"application/json", "application/xml"}
    assert add["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Pet"}
    upload = paths["/pet/{petId}/uploadImage"]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["file"] == {"type": "string", "format": "binary",
                                          "description": "file to upload"}
    assert [p["name"] for p in upload["parameters"]] == ["petId"]
    [status] = paths["/pet/findByStatus"]["get"]["parameters"]
    assert status["schema"] == {"type": "array", "items": {
        "type": "string", "enum": ["available", "pending", "sold"], "default": "available"}}
    assert status["explode"] is True
    order = paths["/store/order/{orderId}"]["get"]
    assert order["parameters"][0]["schema"] == {"type": "integer", "format": "int64",
                                                "minimum": 1, "maximum": 10}
    assert order["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Order"}
    assert "content" not in order["responses"]["404"]
    login = paths["/user/login"]["get"]["responses"]["200"]
    assert login["headers"]["X-Rate-Limit"]["schema"] == {"type": "integer",
                                                          "format": "int32"}


def test_security_definitions_become_schemes(petstore: dict[str, Any]) -> None:
    schemes = petstore["components"]["securitySchemes"]
    assert schemes["api_key"] == {"type": "apiKey", "name": "api_key", "in": "header"}
    assert schemes["petstore_auth"] == {"type": "oauth2", "flows": {"implicit": {
        "authorizationUrl": "https://petstore.swagger.io/oauth/authorize",
        "scopes": {"read:pets": "read your pets",
                   "write:pets": "modify pets in your account"}}}}
    basic = convert({"swagger": "2.0", "paths": {},
                     "securityDefinitions": {"b": {"type": "basic"}}})
    assert basic["components"]["securitySchemes"]["b"] == {"type": "http", "scheme": "basic"}
    assert basic["servers"] == [{"url": "/"}]


def test_a_converted_spec_is_analysed_as_any_other(petstore: dict[str, Any]) -> None:
    analysis = analyse("x", petstore, SpecBounds())
    assert analysis.api_prefix == "/v2" and len(analysis.operations) == 8
    find = next(o for o in analysis.operations if o.operation_id == "findPetsByStatus")
    assert find.scopes == ["write:pets", "read:pets"]
    assert find.responses["200"]["schema"]["items"]["required"] == ["name", "photoUrls"]


@pytest.mark.parametrize("version", ["1.2", "3.0"])
def test_other_swagger_versions_are_refused(version: str) -> None:
    with pytest.raises(SpecError, match=f"Swagger {version} is not supported"):
        parse_spec(json.dumps({"swagger": version, "paths": {}}).encode(), SpecBounds())


def test_parts_of_the_wrong_kind_are_skipped() -> None:
    """Found by mutating the Petstore: each was a TypeError (a 500) before."""
    raw: dict[str, Any] = json.loads((Path(__file__).parent / "petstore-v2.json").read_text())
    raw["produces"], raw["schemes"] = 5, "https"
    raw["paths"]["/pet"]["post"]["parameters"] = 1.5
    raw["paths"]["/pet"]["post"]["consumes"] = {"a": 1}
    converted = parse_spec(json.dumps(raw).encode(), SpecBounds())
    assert "requestBody" not in converted["paths"]["/pet"]["post"]
    assert converted["servers"] == [{"url": "https://petstore.swagger.io/v2"}]


def test_a_file_response_is_binary() -> None:
    """Jupyter Server's `GET /api/spec.yaml` answers `schema: {type: file}`."""
    converted = convert({"swagger": "2.0", "info": {"title": "t", "version": "1"},
                         "produces": ["text/x-yaml"], "paths": {"/spec.yaml": {"get": {
                             "responses": {"200": {"description": "the spec",
                                                   "schema": {"type": "file"}}}}}}})
    answer = converted["paths"]["/spec.yaml"]["get"]["responses"]["200"]
    assert answer["content"] == {"text/x-yaml": {"schema": {"type": "string",
                                                            "format": "binary"}}}
