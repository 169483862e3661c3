"""The llmdocs MCP server with the official MCP client over streamable HTTP (the
interpreter's /mcp) and stdio (`python -m llmdocs mcp`), against real services: every
tool, the document resources and their change notifications, the production prompts,
refusals, and that a document in another space leaves no trace."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.examples import user_service_spec
from llmdocs.mcp.server import RESOURCE_NOT_FOUND
from llmdocs.mcp.tools import TOOLS
from llmdocs.openapi import analyse, parse_spec, spec_hash
from llmdocs.services import create_app
from llmdocs.services.discovery.settings import DiscoverySettings
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import ServiceRegistration
from mcp_eco import SECRET, Eco, http, mcp_ecosystem, over_http, over_stdio
from waiting import eventually

ABSENT = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
async def eco(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> Eco:
    return await mcp_ecosystem(settings, serve, monkeypatch)


async def register_user_service(eco: Eco) -> None:
    spec = parse_spec(user_service_spec().encode(), DiscoverySettings())
    found = analyse("user-service", spec, DiscoverySettings())
    admin = issue_token(eco.settings, "user:admin", ["*"])
    async with OrchestratorClient.for_service(eco.settings, token=admin) as orch:
        await orch.register_service(ServiceRegistration(
            name="user-service", base_url="http://127.0.0.1:9", title="User Service",
            spec_hash=spec_hash(spec), operations=found.operations))


async def called(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's structured output; a tool error fails the test."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    text = result.content[0]
    assert isinstance(text, types.TextContent)
    structured: dict[str, Any] = result.structured_content
    assert json.loads(text.text) == structured
    return structured


def failure(result: types.CallToolResult) -> str:
    assert result.is_error
    text = result.content[0]
    assert isinstance(text, types.TextContent)
    return text.text


async def test_every_tool_resource_and_prompt_over_http(eco: Eco) -> None:
    await register_user_service(eco)
    async with over_http(eco, "user:alice") as alice:
        assert alice.server_info is not None and alice.server_info.name == "llmdocs"
        listed = (await alice.list_tools()).tools
        assert {t.name for t in listed} == set(TOOLS)
        for tool in listed:  # schemas and descriptions for an agent to go by
            assert tool.description and tool.input_schema["type"] == "object"
            assert tool.output_schema is not None
        search = next(t for t in listed if t.name == "search_documents")
        assert set(search.input_schema["properties"]) == {"query", "limit"}

        hits = await called(alice, "search_documents", query="user service", limit=5)
        assert [h["document_id"] for h in hits["results"]] == [eco.alice_doc]
        doc = await called(alice, "get_document", id=eco.alice_doc)
        assert doc["content"] == user_service_spec() and doc["space"] == "team-a"
        assert doc["uri"] == f"llmdocs://documents/{eco.alice_doc}"
        first = await called(alice, "get_document", id=eco.alice_doc, version=1,
                             format="json")
        assert first["version"] == 1
        provenance = await called(alice, "get_provenance", id=eco.alice_doc)
        assert provenance["document_id"] == eco.alice_doc and provenance["version"] == 1

        services = await called(alice, "list_services")
        assert "user-service" in [s["name"] for s in services["services"]]
        operations = await called(alice, "list_operations", service="user-service")
        ids = [o["operation_id"] for o in operations["operations"]]
        assert len(ids) >= 3
        described = await called(alice, "describe_operation", service="user-service",
                                 operation=ids[0])
        assert described["operation"]["operation_id"] == ids[0]
        unknown = await alice.call_tool("describe_operation",
                                        {"service": "user-service", "operation": "nope"})
        assert "no operation 'nope'" in failure(unknown)

        changed = user_service_spec().replace("/users/{user_id}:", "/people/{user_id}:")
        diff = await called(alice, "diff_specs", base={"document_id": eco.alice_doc},
                            head={"content": changed})
        assert diff["summary"]["breaking"] >= 1, diff
        assert any(c["breaking"] and "/users/{user_id}" in (c["operation"] or "")
                   for c in diff["changes"]), diff
        async with http(eco.settings, "docstore", eco.token("user:alice")) as docs:
            guide = (await docs.post("/documents", json={
                "content": "# Users\n\nCall `GET /users` to list users.\n",
                "title": "Users guide", "format": "markdown", "space": "team-a"})).json()
        check = await called(alice, "check_document", id=guide["document_id"],
                             spec={"document_id": eco.alice_doc})
        assert check["missing"] and check["scores"]["completeness"] < 1, check

        bad = await alice.call_tool("search_documents", {"query": "", "limit": 1000})
        assert "Invalid arguments" in failure(bad)

        # resources: listed, read, a version, templates
        resources = (await alice.list_resources()).resources
        assert {str(r.uri) for r in resources} == {
            f"llmdocs://documents/{eco.alice_doc}",
            f"llmdocs://documents/{guide['document_id']}"}
        read = await alice.read_resource(f"llmdocs://documents/{eco.alice_doc}")
        content = read.contents[0]
        assert isinstance(content, types.TextResourceContents)
        assert content.text == user_service_spec()
        versioned = await alice.read_resource(f"llmdocs://documents/{eco.alice_doc}/versions/1")
        assert isinstance(versioned.contents[0], types.TextResourceContents)
        templates = (await alice.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == {
            "llmdocs://documents/{id}", "llmdocs://documents/{id}/versions/{n}"}

        # prompts: the production ones, their variables as arguments
        prompts = (await alice.list_prompts()).prompts
        assert prompts, "the prompt-store seeds production prompts"
        with_args = next(p for p in prompts if p.arguments)
        values = {a.name: f"<{a.name}>" for a in with_args.arguments or []}
        got = await alice.get_prompt(with_args.name, values)
        texts = [m.content.text for m in got.messages if isinstance(m.content, types.TextContent)]
        assert any(value in text for value in values.values() for text in texts), texts
        assert "production" in (got.description or "")


async def test_a_new_version_is_announced_to_a_subscriber(eco: Eco) -> None:
    updated: list[str] = []

    async def handler(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updated.append(str(message.params.uri))

    uri = f"llmdocs://documents/{eco.alice_doc}"
    async with over_http(eco, "user:alice", handler) as alice:
        await alice.subscribe_resource(uri)
        async with http(eco.settings, "docstore", eco.token("user:alice")) as docs:
            answer = await docs.put(f"/documents/{eco.alice_doc}",
                                    json={"content": user_service_spec() + "\n# v2\n"})
            assert answer.status_code == 200, answer.text
        for _ in range(100):
            if updated:
                break
            await asyncio.sleep(0.1)
        assert updated == [uri]
        with pytest.raises(MCPError) as refused:  # Bob's: not there for Alice
            await alice.subscribe_resource(f"llmdocs://documents/{eco.bob_doc}")
        assert refused.value.error.code == RESOURCE_NOT_FOUND


async def test_a_document_in_another_space_leaves_no_trace(eco: Eco) -> None:
    hidden, missing = (f"llmdocs://documents/{eco.bob_doc}", f"llmdocs://documents/{ABSENT}")
    async with over_http(eco, "user:alice") as alice:
        found = await called(alice, "search_documents", query=SECRET)
        assert found["results"] == []
        assert SECRET not in json.dumps(await called(alice, "search_documents",
                                                     query="user service"))
        for tool in ("get_document", "get_provenance"):
            bobs = failure(await alice.call_tool(tool, {"id": eco.bob_doc}))
            assert bobs == failure(await alice.call_tool(tool, {"id": ABSENT}))
        resources = (await alice.list_resources()).resources
        assert eco.bob_doc not in json.dumps([r.model_dump(mode="json") for r in resources])
        errors = []
        for uri in (hidden, missing):
            with pytest.raises(MCPError) as refused:
                await alice.read_resource(uri)
            errors.append((refused.value.error.code,
                           refused.value.error.message.replace(uri, "<uri>")))
        assert errors[0] == errors[1] and errors[0][0] == RESOURCE_NOT_FOUND
    async with over_http(eco, "user:bob") as bob:  # Bob sees his own
        assert (await called(bob, "get_document", id=eco.bob_doc))["content"].count(SECRET)


async def test_a_session_without_a_valid_token_is_refused(eco: Eco) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as client:
        expired = issue_token(eco.settings, "user:alice", ["*"], ttl_seconds=-60)
        for bearer in (None, "not-a-jwt", expired):
            sent = headers | ({"Authorization": f"Bearer {bearer}"} if bearer else {})
            answer = await client.post(eco.mcp_url, json=init, headers=sent)
            assert answer.status_code == 401, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.headers["www-authenticate"].startswith("Bearer")
        # a session is its opener's: Bob's valid token cannot use Alice's session
        alice = headers | {"Authorization": f"Bearer {eco.token('user:alice')}"}
        opened = await client.post(eco.mcp_url, json=init, headers=alice)
        assert opened.status_code == 200, opened.text
        session = {"mcp-session-id": opened.headers["mcp-session-id"],
                   "mcp-protocol-version": "2025-11-25"}
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        bob = headers | session | {"Authorization": f"Bearer {eco.token('user:bob')}"}
        assert (await client.post(eco.mcp_url, json=listing, headers=bob)).status_code == 404
        mine = await client.post(eco.mcp_url, json=listing, headers=alice | session)
        assert mine.status_code == 200 and "search_documents" in mine.text


async def test_with_an_identity_provider_a_refusal_names_the_resource_metadata(
        eco: Eco, serve: Any) -> None:
    issuer = "https://idp.example.test/realms/llmdocs"
    oidc = eco.settings.model_copy(update={"oidc_issuer": issuer, "oidc_audience": "llmdocs"})
    interpreter = await serve(create_app("interpreter", oidc))
    async with httpx.AsyncClient(base_url=interpreter.url, timeout=30) as client:
        refused = await client.post("/mcp", json={})
        assert refused.status_code == 401, refused.text
        metadata_url = f"{interpreter.url}/.well-known/oauth-protected-resource/mcp"
        assert refused.headers["www-authenticate"] == (
            f'Bearer realm="llmdocs", resource_metadata="{metadata_url}"')
        metadata = await client.get(metadata_url)  # public: how a client finds the IdP
        assert metadata.status_code == 200, metadata.text
        assert metadata.json() | {"resource_name": None} == {
            "resource": f"{interpreter.url}/mcp", "authorization_servers": [issuer],
            "bearer_methods_supported": ["header"], "resource_name": None}


async def test_the_stdio_server_serves_the_users_own_documents(eco: Eco) -> None:
    async with over_stdio(eco, "user:alice") as alice:
        assert {t.name for t in (await alice.list_tools()).tools} == set(TOOLS)
        hits = await called(alice, "search_documents", query="user service")
        assert [h["document_id"] for h in hits["results"]] == [eco.alice_doc]
        doc = await called(alice, "get_document", id=eco.alice_doc)
        assert doc["content"] == user_service_spec()
        assert "Not found" in failure(await alice.call_tool("get_document",
                                                            {"id": eco.bob_doc}))
        read = await alice.read_resource(f"llmdocs://documents/{eco.alice_doc}")
        assert isinstance(read.contents[0], types.TextResourceContents)
        assert (await alice.list_prompts()).prompts


async def test_generation_reports_its_steps_and_stops_when_cancelled(eco: Eco) -> None:
    """With the real local model: each workflow step is a progress notification, the
    document is stored; a cancelled call cancels its run, which stores nothing."""
    steps: list[tuple[float, str | None]] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append((progress, message))

    async with over_http(eco, "user:alice") as alice:
        result = await alice.call_tool("generate_documentation", {
            "request": "Create API documentation for user service", "format": "markdown",
            "spec": eco.alice_doc, "space": "team-a"}, progress_callback=progress,
            read_timeout_seconds=900)
        assert not result.is_error, result.content
        made = result.structured_content or {}
        assert made["status"] == "completed" and made["document_id"]
        assert [done for done, _ in steps] == list(range(1, len(steps) + 1))
        assert [m.split(":")[0] for _, m in steps if m] == made["steps"]
        assert {"analyze", "outline"} <= set(made["steps"])
        doc = await called(alice, "get_document", id=made["document_id"])
        assert doc["space"] == "team-a" and "/users" in doc["content"]

        # a spec the model has not written for: a run of the first one's cached answers
        # ends in a fraction of a second, before a cancel could reach it
        async with http(eco.settings, "docstore", eco.token("user:alice")) as docs:
            stored = await docs.post("/documents", json={
                "content": user_service_spec().replace("title: User Service",
                                                       "title: Billing Service"),
                "title": "billing service OpenAPI", "format": "yaml", "tags": ["openapi"],
                "space": "team-a"})
            assert stored.status_code == 201, stored.text
        first_step = asyncio.Event()

        async def on_step(progress: float, total: float | None, message: str | None) -> None:
            first_step.set()

        call = asyncio.create_task(alice.call_tool("generate_documentation", {
            "request": "Create API documentation for billing service", "format": "txt",
            "spec": stored.json()["document_id"], "space": "team-a"},
            progress_callback=on_step))
        await asyncio.wait_for(first_step.wait(), 600)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    async with OrchestratorClient.for_service(eco.settings,
                                              token=eco.token("user:alice")) as orch:
        async def cancelled() -> bool:
            return len((await orch.runs(status="cancelled")).items) == 1
        await eventually(cancelled, attempts=60_000)
    async with http(eco.settings, "docstore", eco.token("user:alice")) as docs:
        listed = (await docs.get("/documents", params={"format": "txt"})).json()
        assert listed["items"] == []


async def test_the_stdio_server_refuses_a_token_the_services_refuse(
        eco: Eco, tmp_path: Path) -> None:
    expired = issue_token(eco.settings, "user:alice", ["*"], ttl_seconds=-60)
    with (tmp_path / "stderr").open("w+") as errlog:
        with pytest.raises(BaseExceptionGroup) as ended:
            async with over_stdio(eco, "user:alice", token=expired, errlog=errlog):
                pass
        errlog.seek(0)
        said = errlog.read()
    assert ended.group_contains(MCPError, match="Connection closed", depth=None)
    assert "llmdocs mcp: the token is refused" in said and "expired" in said, said
