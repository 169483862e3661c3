"""The reference of real specs: the project's example, USPTO's (3.0) and the Swagger
Petstore (2.0): complete for the coverage check, and the facts a developer looks for."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmdocs.openapi import SpecBounds, analyse
from llmdocs.openapi import markdown as md
from llmdocs.openapi.reference import Reference, build_reference, reference_of_operations
from llmdocs.services.orchestrator import apidoc


def document(reference: Reference) -> str:
    """The reference parts in the order the workflow places them."""
    parts = [md.overview(reference), md.getting_started(reference)]
    if reference.security_schemes:
        parts.append(md.authentication(reference))
    for tag in reference.tags:
        parts += [f"## {md.title_case(tag.name)}", md.tag_description(reference, tag.name),
                  *md.group(reference, tag.name)]
    parts += ["## Schemas", md.schemas(reference), md.summary_table(reference)]
    return "\n\n".join(p for p in parts if p)


@pytest.mark.parametrize("name", ["user_service", "uspto", "petstore"])
def test_every_operation_parameter_and_status_is_covered(
        name: str, request: pytest.FixtureRequest) -> None:
    spec: dict[str, Any] = request.getfixturevalue(name)
    reference = build_reference(spec, SpecBounds())
    operations = analyse("x", spec, SpecBounds()).operations
    coverage = apidoc.check(document(reference), operations)
    assert coverage.complete and coverage.ratio == 1.0, coverage
    assert [(o.method, o.path) for o in reference.operations] == [
        (o.method, o.path) for o in operations]  # the spec's order, grouped by tag
    assert reference.warnings == []
    for op in reference.operations:  # every success body has an example to show
        assert op.examples_missing == [], (op.method, op.path, op.examples_missing)


def test_user_service(user_service: dict[str, Any]) -> None:
    reference = build_reference(user_service, SpecBounds())
    assert reference.servers[0].url == "https://api.example.com/v1"
    assert reference.description.startswith("Manages the user accounts")
    text = document(reference)
    assert "| `limit` | query | integer | no | Page size (1-100). — default: `20`; " \
        "1 ≤ value ≤ 100 |" in text
    assert "| `role` | string | no | Access level. — one of: `member`, `admin` |" in text
    assert "**Request body**: `application/json`, required: [NewUser](#newuser)." in text
    assert "| `404` | No user with this id. | `application/json` [Error](#error) |" in text
    login = next(o for o in reference.operations if o.path == "/sessions")
    assert login.security == []  # `security: []`: the login needs no token
    assert "curl -X POST 'https://api.example.com/v1/sessions' \\\n  -H 'Content-Type: " \
        "application/json' \\\n  -d '{\"email\": \"user@example.com\"" in text


def test_uspto(uspto: dict[str, Any]) -> None:
    reference = build_reference(uspto, SpecBounds())
    listing, _, search = reference.operations
    assert listing.responses[0].body and listing.responses[0].body.example.origin == "spec"
    assert [t.description for t in reference.tags] == ["Find out about the data sets",
                                                       "Search a data set"]
    assert search.request_body and search.request_body.content_type == (
        "application/x-www-form-urlencoded")
    assert [f.name for f in search.request_body.fields] == ["criteria", "start", "rows"]
    text = document(reference)
    assert "--data-urlencode 'criteria=*:*'" in text
    assert "| `dataset` | path | string | yes | Name of the dataset. In this case, the " \
        "default value is oa_citations — default: `oa_citations` |" in text
    assert "| `apis[].apiKey` | string | no | To be used as a dataset parameter value |" in text
    # its server's variable: the URL at its default, and the other value it may take
    assert "- `https://developer.uspto.gov/ds-api`\n  The spec writes it as `{scheme}://" \
        "developer.uspto.gov/ds-api`, where `scheme` is one of `https`, `http`, by " \
        "default `https`" in text


def test_petstore(petstore: dict[str, Any]) -> None:
    reference = build_reference(petstore, SpecBounds())
    assert [s.url for s in reference.servers] == ["https://petstore.swagger.io/v2",
                                                  "http://petstore.swagger.io/v2"]
    auth = {s.name: s for s in reference.security_schemes}
    assert auth["api_key"].how == "header `api_key`"
    assert auth["petstore_auth"].scopes == {"read:pets": "read your pets",
                                            "write:pets": "modify pets in your account"}
    text = document(reference)
    assert "| `status` | query | array of string | yes | Status values that need to be " \
        "considered for filter — one of: `available`, `pending`, `sold` |" in text
    assert "?status=available'" in text
    assert "| `orderId` | path | integer (int64) | yes | ID of pet that needs to be " \
        "fetched — 1 ≤ value ≤ 10 |" in text
    assert "-F 'file=@path/to/file'" in text
    assert "| `X-Rate-Limit` | integer (int32) | calls per hour allowed by the user |" in text
    assert "array of [Pet](#pet-1)" in text and "\n### Pet\n" in text  # after `## Pet`


def test_a_registered_service_gets_a_reduced_reference(user_service: dict[str, Any]) -> None:
    """From its operations alone (`$ref`s inlined): the same operations and facts, no
    servers, schemes or shared schemas to link to."""
    operations = analyse("x", user_service, SpecBounds()).operations
    reduced = reference_of_operations("User Service", "1.4.0", operations, SpecBounds())
    full = build_reference(user_service, SpecBounds())
    assert [(o.method, o.path, o.tag) for o in reduced.operations] == [
        (o.method, o.path, o.tag) for o in full.operations]
    assert reduced.schemas == [] and reduced.servers == [] and reduced.warnings == []
    listing = reduced.operations[0]
    assert [p.model_dump() for p in listing.parameters] == [
        p.model_dump() for p in full.operations[0].parameters]
    body = listing.responses[0].body
    assert body is not None and [f.name for f in body.fields] == [
        "[].id", "[].email", "[].name", "[].role", "[].created_at"]
    assert apidoc.check(document(reduced), operations).complete


@pytest.mark.parametrize("name", ["user_service", "uspto", "petstore"])
def test_the_reference_survives_a_checkpoint(name: str, request: pytest.FixtureRequest) -> None:
    """A run keeps it in its state as JSON and reads it back after a restart."""
    reference = build_reference(request.getfixturevalue(name), SpecBounds())
    stored = json.loads(json.dumps(reference.model_dump(mode="json")))
    assert Reference.model_validate(stored) == reference


def test_malformed_parts_are_skipped_or_refused(user_service: dict[str, Any]) -> None:
    """Found by mutating real specs: each was a TypeError (a 500) before."""
    doc = json.loads(json.dumps(user_service))
    doc["security"] = [{"bearerAuth": 5}]
    schemas = doc["components"]["schemas"]
    schemas["NewUser"]["required"] = [{"not": "a name"}, "email"]
    schemas["User"]["properties"]["created_at"]["minimum"] = 1e308 * 10
    reference = build_reference(doc, SpecBounds())
    assert reference.operations[0].security[0][0].scopes == []
    create = reference.operations[1]
    assert create.request_body and create.request_body.example.origin == "none"
    assert "the schema cannot be checked" in create.request_body.example.reason
    doc["paths"]["/users"]["get"]["parameters"] = 7
    assert build_reference(doc, SpecBounds()).operations[0].parameters == []
    doc["paths"]["/users"]["get"]["responses"] = {"200": {"headers": {"X": 5}}, "201": 5}
    listing = build_reference(doc, SpecBounds()).operations[0]
    assert [(r.status, [h.name for h in r.headers]) for r in listing.responses] == [
        ("200", ["X"]), ("201", [])]
    doc["info"] = {"title": "ok"}
    doc["paths"] = {"/x": {"get": {"operationId": "a"}}, "/y": {"get": {"operationId": "a"}}}
    assert [o.operation_id for o in build_reference(doc, SpecBounds()).operations] == [
        "a", "a_"]  # as distinct as the spec's paths
