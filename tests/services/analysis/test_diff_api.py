"""`POST /diff` over real HTTP: specs stored (read with the caller's rights), at a URL
(the guarded fetch), inline and as text, the same answer from each; every spec it
cannot use is a 422 naming the problem."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from ecosystem import store_spec, token
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.examples import user_service_spec
from llmdocs.services import create_app
from llmdocs.services.docstore.client import DocStoreClient

Serve = Any


def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(user_service_spec())
    return loaded


def changed() -> dict[str, Any]:
    """One operation gone (breaking), one summary reworded (not breaking)."""
    doc = spec()
    del doc["paths"]["/sessions/current"]
    doc["paths"]["/users"]["get"]["summary"] = "Every user, a page at a time"
    return doc


async def analysis(eco: Settings, serve: Serve) -> httpx.AsyncClient:
    running = await serve(create_app("analysis", eco), port=eco.port_for("analysis"))
    return httpx.AsyncClient(base_url=running.url, timeout=30,
                             headers={"Authorization": f"Bearer {token(eco)}"})


def kinds(answer: httpx.Response) -> list[tuple[str, str | None, bool]]:
    assert answer.status_code == 200, answer.text
    return sorted((c["kind"], c["operation"], c["breaking"]) for c in answer.json()["changes"])


EXPECTED = [("operation.removed", "DELETE /sessions/current", True),
            ("summary.changed", "GET /users", False)]


async def test_a_diff_of_specs_in_every_form(eco: Settings, serve: Serve) -> None:
    stored = await store_spec(eco)
    head = changed()
    site = await serve(Starlette(routes=[Route(
        "/openapi.json", lambda _: Response(json.dumps(head), media_type="application/json"))]))
    async with await analysis(eco, serve) as http:
        for base_ref, head_ref in [
                ({"document_id": stored}, {"spec": head}),
                ({"document_id": stored, "version": 1}, {"url": site.url + "/openapi.json"}),
                ({"content": user_service_spec()}, {"content": json.dumps(head)})]:
            answer = await http.post("/diff", json={"base": base_ref, "head": head_ref})
            assert kinds(answer) == EXPECTED
            assert answer.json()["summary"] == {"breaking": 1, "non_breaking": 1}
        # the same spec as YAML text, as JSON with its keys reversed: no change
        reordered = dict(reversed(list(spec().items())))
        same = await http.post("/diff", json={"base": {"document_id": stored},
                                              "head": {"spec": reordered}})
        assert kinds(same) == []


def cyclic() -> dict[str, Any]:
    doc = spec()
    doc["components"]["schemas"]["User"] = {"$ref": "#/components/schemas/NewUser"}
    doc["components"]["schemas"]["NewUser"] = {"$ref": "#/components/schemas/User"}
    return doc


def leaving() -> dict[str, Any]:
    doc = spec()
    doc["components"]["schemas"]["User"] = {"$ref": "https://elsewhere.example/user.json"}
    return doc


def deep() -> dict[str, Any]:
    doc = spec()
    node: dict[str, Any] = {}
    doc["info"]["x-deep"] = node
    for _ in range(300):
        node["a"] = {}
        node = node["a"]
    return doc


@pytest.mark.parametrize(("head", "problem"), [
    ({"content": "openapi: [unclosed"}, "neither JSON nor YAML"),
    ({"content": "just words"}, "not a JSON/YAML object"),
    ({"spec": {"swagger": "1.2", "paths": {}}}, "Swagger 1.2 is not supported"),
    ({"spec": {"info": {"title": "no version"}, "paths": {}}}, "not an OpenAPI 3.0/3.1"),
    ({"content": json.dumps(deep())}, "nests deeper than 200"),
    ({"content": "openapi: 3.0.3\n" + "#" * 5_000_001}, "the limit is 5000000"),
    ({"spec": cyclic()}, "$ref cycle"),
    ({"spec": leaving()}, "leaves the document"),
], ids=["unparseable", "not-an-object", "old-swagger", "not-openapi", "too-deep",
        "too-large", "ref-cycle", "ref-leaving"])
async def test_a_spec_it_cannot_use_is_a_422_naming_the_problem(
        eco: Settings, serve: Serve, head: dict[str, Any], problem: str) -> None:
    async with await analysis(eco, serve) as http:
        answer = await http.post("/diff", json={"base": {"spec": spec()}, "head": head})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert problem in answer.json()["detail"]


async def test_stored_specs_are_read_with_the_callers_rights(eco: Settings, serve: Serve
                                                             ) -> None:
    stored = await store_spec(eco)
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        binary = (await docs.upload(b"\x00\x01", "spec.bin", dedupe=False)).document_id
    async with await analysis(eco, serve) as http:
        def body(base: dict[str, Any]) -> dict[str, Any]:
            return {"base": base, "head": {"spec": spec()}}

        missing = await http.post("/diff", json=body({"document_id": "no-such-document"}))
        assert missing.status_code == 404 and "no document" in missing.json()["detail"]
        assert missing.json()["errors"][0]["field"] == "base.document_id"
        # an id that would reach another doc-store route is refused before any call
        sneaky = await http.post("/diff", json=body({"document_id": "abc/versions"}))
        assert sneaky.status_code == 422 and "should match pattern" in sneaky.text
        blob = await http.post("/diff", json=body({"document_id": binary}))
        assert blob.status_code == 422 and "binary" in blob.json()["detail"]
        # analysis:read alone: the doc-store sees the caller, who may not read documents
        weak = {"Authorization": f"Bearer {issue_token(eco, 'user:u2', ['analysis:read'])}"}
        refused = await http.post("/diff", json=body({"document_id": stored}), headers=weak)
        assert refused.status_code == 403, refused.text
        inline = await http.post("/diff", json={"base": {"spec": spec()},
                                                "head": {"spec": changed()}}, headers=weak)
        assert kinds(inline) == EXPECTED
        unscoped = {"Authorization": f"Bearer {issue_token(eco, 'user:u3', ['docs:read'])}"}
        assert (await http.post("/diff", json=body({"document_id": stored}),
                                headers=unscoped)).status_code == 403
