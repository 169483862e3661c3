"""Every service's OpenAPI document resolves: each `$ref` names a part of the document
that is there (the doc-store's named a `DocumentCreate` schema it lacked, so no client
generator or fuzzer could read its write operations)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.services import create_app


def refs(node: Any, where: str = "#") -> Iterator[tuple[str, str]]:
    """Every `$ref` of the document, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from refs(value, f"{where}/{index}")


def resolve(document: dict[str, Any], ref: str) -> Any:
    """The part a local JSON pointer names (RFC 6901), or a KeyError."""
    assert ref.startswith("#/"), f"not a reference into the document: {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        key = unquote(part).replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


@pytest.mark.parametrize("key", SERVICE_NAMES)
async def test_every_ref_of_the_openapi_document_resolves(key: str, settings: Settings,
                                                          serve: Any) -> None:
    running = await serve(create_app(key, settings))
    async with httpx.AsyncClient(base_url=running.url) as http:
        answer = await http.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    found = list(refs(document))
    missing = []
    for where, ref in found:
        try:
            resolve(document, ref)
        except (KeyError, IndexError, ValueError):
            missing.append(f"{where}: {ref}")
    assert not missing, missing
    assert found, "a document without references: the walk found nothing to check"


async def test_the_doc_store_shows_what_its_writes_take(settings: Settings,
                                                        serve: Any) -> None:
    """Its writes read their own body (JSON or a file): the document shows it whole."""
    running = await serve(create_app("docstore", settings))
    async with httpx.AsyncClient(base_url=running.url) as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
    create = paths["/documents"]["post"]["requestBody"]["content"]
    update = paths["/documents/{document_id}"]["put"]["requestBody"]["content"]
    bulk = paths["/documents/bulk"]["post"]["requestBody"]["content"]
    for body in (create["application/json"], update["application/json"],
                 bulk["application/x-ndjson"]):
        assert "content" in body["schema"]["required"]
        assert body["schema"]["properties"]["relations"]["items"]["properties"]["type"]
    # a new version takes no source, author, metadata or tags: those are a PATCH
    assert {"source", "tags"} <= create["application/json"]["schema"]["properties"].keys()
    assert {"source", "tags"} <= create["multipart/form-data"]["schema"]["properties"].keys()
    for kind in ("application/json", "multipart/form-data"):
        assert not {"source", "author", "metadata", "tags"} & update[kind]["schema"][
            "properties"].keys()


# every creating POST, by service: each takes Idempotency-Key (core.idempotency)
KEYED = {
    "promptstore": ["/api/v1/prompts", "/api/v1/prompts/{ref}/versions",
                    "/api/v1/prompts/{ref}/fork",
                    "/api/v1/optimization/prompts/{ref}/optimize", "/api/v1/abtests",
                    "/api/v1/abtests/{test_id}/outcomes"],
    "orchestrator": ["/registry/services", "/workflows/agent/runs", "/workflows/{name}/runs"],
    "docstore": ["/documents"],
    "interpreter": ["/execute-query"],
}


@pytest.mark.parametrize("key", sorted(KEYED))
async def test_every_creating_post_shows_its_idempotency_key(key: str, settings: Settings,
                                                             serve: Any) -> None:
    running = await serve(create_app(key, settings))
    async with httpx.AsyncClient(base_url=running.url) as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
    for path in KEYED[key]:
        [header] = [p for p in paths[path]["post"].get("parameters", [])
                    if p["name"] == "Idempotency-Key"]
        assert header["in"] == "header" and not header.get("required"), path
        assert "first answer" in header["description"], path
