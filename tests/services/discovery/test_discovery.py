"""Discovery, the registry, tool generation and the health watch over real HTTP: the
discovery-agent and the orchestrator as served apps, a third-party service (the USPTO
example spec from the shared corpus) as a small local server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter, ValidationError
from typer.testing import CliRunner

from llmdocs.cli import app as cli_app
from llmdocs.core.auth import issue_token, verify_token
from llmdocs.core.config import LINK_LOCAL, SERVICE_NAMES, Settings
from llmdocs.core.db import Database
from llmdocs.core.events.factory import create_event_bus
from llmdocs.core.fetch import guarded_client
from llmdocs.devservers import free_port
from llmdocs.openapi import SpecError, Unreachable, fetch_spec
from llmdocs.services import create_app, spec_of
from llmdocs.services.discovery.client import DiscoveryClient, start_self_registration
from llmdocs.services.discovery.settings import DiscoverySettings
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import SpecUrl
from llmdocs.services.orchestrator.settings import OrchestratorSettings
from llmdocs.services.orchestrator.tools import ToolCaller, tool_specs

USPTO = Path("/work/shared/corpus/openapi/uspto.yaml")
PETSTORE = Path(__file__).parents[2] / "openapi" / "petstore-v2.json"
Serve = Callable[..., Awaitable[Any]]


def third_party(specs: dict[str, Any], seen: list[dict[str, str]]) -> FastAPI:
    """A service that is not ours: no /health, its spec only at /openapi.yaml (so the
    usual paths are tried), its API under the spec's server path /ds-api."""
    api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @api.get("/openapi.yaml")
    async def spec() -> Response:
        return Response(yaml.safe_dump(specs["main"]), media_type="application/yaml")

    @api.get("/specs/{name}")
    async def other(name: str) -> Response:
        body = specs[name]
        return Response(body if isinstance(body, bytes) else json.dumps(body),
                        media_type="application/json")

    @api.get("/ds-api/{dataset}/{version}/fields")
    async def fields(dataset: str, version: str, request: Request) -> list[str]:
        seen.append(dict(request.headers))
        return [f"{dataset}:{version}:patentTitle"]

    @api.post("/ds-api/{dataset}/{version}/records")
    async def records(dataset: str, version: str, request: Request) -> dict[str, Any]:
        form = await request.form()
        return {"dataset": dataset, "criteria": form.get("criteria"), "rows": form.get("rows")}

    @api.get("/loop")
    async def loop() -> Response:
        return Response(status_code=307, headers={"location": "/loop"})

    @api.get("/to-metadata")
    async def to_metadata() -> Response:  # where a cloud serves its credentials
        return Response(status_code=302,
                        headers={"location": "http://169.254.169.254/latest/meta-data/"})

    @api.get("/")
    async def root() -> dict[str, str]:
        return {"hello": "uspto"}

    return api


@pytest.fixture
def ports(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    monkeypatch.setenv("LLMDOCS_DISCOVERY_DISCOVER_ON_START", "false")
    monkeypatch.setenv("LLMDOCS_DISCOVERY_WATCH_INTERVAL_SECONDS", "0")
    monkeypatch.setenv("LLMDOCS_DISCOVERY_MAX_OPERATIONS", "500")
    return {key: free_port() for key in SERVICE_NAMES}


@pytest.fixture
def eco(settings: Settings, ports: dict[str, int]) -> Settings:
    return settings.model_copy(update={f"{k}_port": p for k, p in ports.items()})


@pytest.fixture
async def running(eco: Settings, serve: Serve) -> Settings:
    for key in ("orchestrator", "discovery"):
        await serve(create_app(key, eco), port=eco.port_for(key))
    return eco


@pytest.fixture
def specs() -> dict[str, Any]:
    return {"main": yaml.safe_load(USPTO.read_text())}


@pytest.fixture
def seen() -> list[dict[str, str]]:
    return []


@pytest.fixture
async def uspto(serve: Serve, specs: dict[str, Any], seen: list[dict[str, str]]) -> Any:
    return await serve(third_party(specs, seen))


def token(settings: Settings, *scopes: str) -> str:
    return issue_token(settings, "user:test", scopes or ("*",))


def discovery(settings: Settings, *scopes: str) -> DiscoveryClient:
    return DiscoveryClient.for_service(settings, token=token(settings, *scopes))


def orchestrator(settings: Settings, *scopes: str) -> OrchestratorClient:
    return OrchestratorClient.for_service(settings, token=token(settings, *scopes))


async def test_discover_all_registers_llmdocs_services(running: Settings) -> None:
    async with discovery(running) as d, orchestrator(running) as o:
        results = {r.name: r for r in await d.discover_all()}
        assert set(results) == {spec_of(k).name for k in SERVICE_NAMES}
        assert results["orchestrator"].status == "registered"
        assert results["discovery-agent"].status == "registered"
        assert results["doc-store"].status == "failed"  # not served in this test
        assert "unreachable" in (results["doc-store"].error or "")

        detail = await o.get_service("orchestrator")
        assert detail.auth == "service_token" and detail.health_path == "/health"
        ops = {op.operation_id: op for op in detail.operations}
        register = next(op for op in ops.values() if op.path == "/registry/services"
                        and op.method == "post")
        assert register.request_body is not None
        assert "name" in register.request_body.schema_["properties"]  # $refs inlined
        assert "registry" in detail.groups["orchestrator"]
        # its callees (gateway, prompt-store, doc-store) are not served here
        assert detail.health.status == "degraded"
        assert "llm-gateway" in (detail.health.reason or "") or "gateway" in (
            detail.health.reason or "")

        again = {r.name: r for r in await d.discover_all()}
        assert again["orchestrator"].status == "unchanged"
        assert again["orchestrator"].spec_hash == results["orchestrator"].spec_hash
        assert len(await d.discoveries(name="orchestrator")) == 2


async def test_third_party_spec_discovery_and_change(
    running: Settings, uspto: Any, specs: dict[str, Any]
) -> None:
    async with discovery(running) as d, orchestrator(running) as o:
        first = await d.discover("uspto", uspto.url)
        assert first.status == "registered", first.error
        assert first.spec_url == f"{uspto.url}/openapi.yaml"
        assert first.operation_count == 3 and first.health == "healthy"
        detail = await o.get_service("uspto")
        assert detail.api_prefix == "/ds-api" and detail.auth == "none"
        assert detail.health_path is None  # it has no /health
        assert detail.groups == {"metadata": {"": ["list-data-sets"],
                                              "fields": ["list-searchable-fields"]},
                                 "search": {"records": ["perform-search"]}}
        search = next(op for op in detail.operations if op.operation_id == "perform-search")
        assert search.request_body is not None
        assert search.request_body.content_type == "application/x-www-form-urlencoded"
        assert {p.name for p in search.parameters} == {"dataset", "version"}

        assert (await d.discover("uspto", uspto.url)).status == "unchanged"
        specs["main"]["paths"]["/extra"] = {"get": {"operationId": "extra",
                                                    "responses": {"200": {"description": "ok"}}}}
        changed = await d.discover("uspto", uspto.url)
        assert changed.status == "registered" and changed.spec_hash != first.spec_hash
        assert (await o.get_service("uspto")).operation_count == 4


async def test_tools_in_three_formats_call_real_services(
    running: Settings, uspto: Any, seen: list[dict[str, str]]
) -> None:
    async with discovery(running) as d, orchestrator(running) as o:
        await d.discover("uspto", uspto.url)
        await d.discover("orchestrator", running.url_for("orchestrator"))
        mcp = {t["name"]: t for t in await o.tools("mcp")}
        fields = mcp["uspto__list-searchable-fields"]
        assert fields["inputSchema"]["required"] == ["dataset", "version"]
        assert fields["annotations"]["readOnlyHint"] is True
        openai = {t["function"]["name"]: t for t in await o.tools("openai", service="uspto")}
        assert set(openai) == {"uspto__list-data-sets", "uspto__list-searchable-fields",
                               "uspto__perform-search"}
        assert openai["uspto__perform-search"]["type"] == "function"
        langchain = await o.tools("langchain", service="uspto")
        assert {t["name"] for t in langchain} == set(openai)

        result = await o.call_tool("uspto__list-searchable-fields",
                                   {"dataset": "oa citations", "version": "v1"})
        assert result.status == 200 and result.body == ["oa citations:v1:patentTitle"]
        assert "authorization" not in seen[-1]  # our token never goes to a third party
        form = await o.call_tool("uspto__perform-search", {
            "dataset": "oa", "version": "v1", "body": {"criteria": "*:*", "rows": 5}})
        assert form.body == {"dataset": "oa", "criteria": "*:*", "rows": "5"}

        # an llmdocs service is called for the caller (see test_registry_security)
        listed = await o.call_tool("orchestrator__list_services_registry_services_get", {})
        assert listed.status == 200
        assert {s["name"] for s in listed.body} == {"uspto", "orchestrator"}

        with pytest.raises(Exception) as bad:
            await o.call_tool("uspto__list-searchable-fields", {"dataset": "x"})
        assert getattr(bad.value, "status", None) == 422
        with pytest.raises(Exception) as missing:
            await o.call_tool("nope", {})
        assert getattr(missing.value, "status", None) == 404

        # the same catalogue as LangChain tools, called as a LangGraph node would
        details = [await o.get_service("uspto")]
        caller = token(running)
        tools = {t.name: t for t in ToolCaller(
            running, OrchestratorSettings(), verify_token(running, caller), caller
        ).structured_tools(tool_specs(details))}
        answer = json.loads(await tools["uspto__list-searchable-fields"].ainvoke(
            {"dataset": "a?b=1#c", "version": "v2"}))  # quoted: no query smuggled in
        assert answer["status"] == 200 and answer["body"] == ["a?b=1#c:v2:patentTitle"]


def _cyclic_spec() -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "tree", "version": "1"},
            "security": [{"oauth": ["tree:read"]}],
            "paths": {"/nodes": {"post": {
                "operationId": "add", "responses": {"200": {"description": "ok"}},
                "security": [{"oauth": ["tree:write"]}, {"key": []}],
                "x-required-scopes": ["tree:admin"],
                "requestBody": {"content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Node"}}}}}}},
            "components": {"schemas": {
                "Node": {"type": "object", "properties": {
                    "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                    "loop": {"$ref": "#/components/schemas/A"}}},
                "A": {"$ref": "#/components/schemas/B"},
                "B": {"$ref": "#/components/schemas/A"}}}}


def _ref_bomb(levels: int = 10, fan_out: int = 16) -> dict[str, Any]:
    """Small as text, 16**10 values once inlined."""
    schemas = {f"L{i}": {"type": "object", "properties": {
        f"p{j}": {"$ref": f"#/components/schemas/L{i + 1}"} for j in range(fan_out)}}
        for i in range(levels)}
    schemas[f"L{levels}"] = {"type": "string"}
    return {"openapi": "3.0.3", "info": {"title": "bomb", "version": "1"},
            "paths": {"/x": {"get": {"responses": {"200": {"description": "ok", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/L0"}}}}}}}},
            "components": {"schemas": schemas}}


def _many_operations(count: int) -> dict[str, Any]:
    return {"openapi": "3.0.0", "info": {"title": "big", "version": "1"},
            "paths": {f"/r{i}": {"get": {"responses": {"200": {"description": "ok"}}}}
                      for i in range(count)}}


async def test_specs_are_never_fetched_from_a_blocked_network(uspto: Any) -> None:
    """Link-local addresses (cloud metadata) are refused by default, however written and
    through a redirect too, before any connection; a configured range covers the names
    that resolve into it; other hosts are fetched as before."""
    bounds = DiscoverySettings()
    base = f"http://127.0.0.1:{uspto.port}"
    async with guarded_client(LINK_LOCAL, follow_redirects=True) as http:
        for url in ("http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/openapi.json",
                    "http://[::ffff:169.254.169.254]/openapi.json", f"{base}/to-metadata"):
            with pytest.raises(Unreachable, match="in the blocked network"):
                await fetch_spec(http, url, url, bounds)
        found_at, doc = await fetch_spec(http, base, None, bounds)
        assert found_at == f"{base}/openapi.yaml" and doc["info"]["title"]
    local = [ip_network("127.0.0.0/8"), ip_network("::1/128")]
    async with guarded_client(local) as http:
        with pytest.raises(Unreachable, match=r"localhost is at .* blocked network"):
            await fetch_spec(http, f"http://localhost:{uspto.port}", "/openapi.yaml", bounds)


def test_the_blocked_networks_are_one_setting_with_its_old_name_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    assert Settings().blocked_networks == list(LINK_LOCAL)
    monkeypatch.setenv("LLMDOCS_DISCOVERY_BLOCKED_NETWORKS", '["10.0.0.0/8"]')
    assert Settings().blocked_networks == [ip_network("10.0.0.0/8")]
    monkeypatch.setenv("LLMDOCS_BLOCKED_NETWORKS", '["127.0.0.0/8", "::1/128"]')
    assert Settings().blocked_networks == [ip_network("127.0.0.0/8"), ip_network("::1/128")]


def redirect_to(location: str) -> FastAPI:
    """A service whose spec has moved to `location`."""
    api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @api.get("/openapi.json")
    async def moved() -> Response:
        return Response(status_code=302, headers={"location": location})

    return api


async def test_a_name_is_connected_to_at_the_address_that_was_checked(uspto: Any) -> None:
    """DNS rebinding: a name that answers an allowed address to the check and the
    metadata address afterwards. Each connection looks the name up once and connects to
    the address it checked; the next connection's answer is checked in its turn. The
    name (.invalid) resolves nowhere else, so reaching the spec proves where we went."""
    lookups: list[tuple[str, int]] = []

    async def rebinding(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return ["127.0.0.1"] if len(lookups) == 1 else ["169.254.169.254"]

    bounds = DiscoverySettings()
    base = f"http://rebind.invalid:{uspto.port}"
    async with guarded_client(LINK_LOCAL, lookup=rebinding) as http:
        found_at, doc = await fetch_spec(http, base, "/openapi.yaml", bounds)
        assert found_at == f"{base}/openapi.yaml" and doc["info"]["title"]
        await fetch_spec(http, base, "/openapi.yaml", bounds)  # the same connection, kept
    assert lookups == [("rebind.invalid", uspto.port)]
    async with guarded_client(LINK_LOCAL, lookup=rebinding) as http:
        with pytest.raises(Unreachable, match=r"rebind\.invalid is at 169\.254\.169\.254, "
                                              r"in the blocked network 169\.254\.0\.0/16"):
            await fetch_spec(http, base, "/openapi.yaml", bounds)
    assert len(lookups) == 2


async def test_a_redirect_to_a_blocked_name_is_refused(uspto: Any, serve: Serve) -> None:
    """A redirect opens a new connection, and its name is checked like the first. An
    allowed name's addresses are tried in order (nothing listens on ::1 here)."""
    names = {"spec.invalid": ["::1", "127.0.0.1"], "metadata.invalid": ["169.254.169.254"]}

    async def lookup(host: str, port: int) -> list[str]:
        return names[host]

    moved = await serve(redirect_to(f"http://metadata.invalid:{uspto.port}/openapi.yaml"))
    bounds = DiscoverySettings()
    async with guarded_client(LINK_LOCAL, follow_redirects=True, lookup=lookup) as http:
        found_at, _ = await fetch_spec(http, f"http://spec.invalid:{uspto.port}", None, bounds)
        assert found_at.endswith("/openapi.yaml")
        with pytest.raises(Unreachable, match=r"metadata\.invalid is at 169\.254\.169\.254, "
                                              r"in the blocked network"):
            await fetch_spec(http, f"http://spec.invalid:{moved.port}", None, bounds)


async def endless(pause: float) -> AsyncIterator[bytes]:
    """A body that never ends, a byte every `pause` seconds: each read is quick."""
    while True:
        yield b" "
        await asyncio.sleep(pause)


def dripping() -> FastAPI:
    """A spec server that sends a byte every 50 ms, without end."""
    api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @api.get("/openapi.json")
    async def drip() -> StreamingResponse:
        return StreamingResponse(endless(0.05), media_type="application/json")

    return api


async def test_a_spec_fetch_has_a_deadline_and_a_bad_url_is_a_reason(serve: Serve) -> None:
    """A server that keeps every read short cannot hold a fetch past its deadline; a URL
    that does not parse is a reason, not a crash."""
    slow = await serve(dripping())
    bounds = DiscoverySettings(fetch_timeout_seconds=5, fetch_deadline_seconds=0.5)
    async with guarded_client(LINK_LOCAL) as http:
        with pytest.raises(SpecError, match=r"did not arrive within 0\.5 s"):
            await fetch_spec(http, slow.url, "/openapi.json", bounds)
        with pytest.raises(Unreachable, match=r"not a valid URL: Invalid IPv6 URL"):
            await fetch_spec(http, "http://[::1", "http://[::1", bounds)
    # a request's spec URL is checked when it arrives, credentials refused (they would be
    # kept with the run and its provenance)
    spec_url = TypeAdapter(SpecUrl)
    assert spec_url.validate_python(slow.url + "/openapi.json")
    for bad, reason in (("http://bob:s3cret@api.example.com/openapi.json", "credentials"),
                        ("file:///etc/passwd", "absolute http"), ("http://[::1", "IPv6"),
                        ("http://example.com/a\x00b", "control characters")):
        with pytest.raises(ValidationError, match=reason):
            spec_url.validate_python(bad)


async def test_bad_specs_are_failed_discoveries_not_crashes(
    running: Settings, uspto: Any, specs: dict[str, Any]
) -> None:
    specs.update({
        "cyclic": _cyclic_spec(), "bomb": _ref_bomb(), "many": _many_operations(600),
        "fine_many": _many_operations(400), "swagger": {"swagger": "1.2", "paths": {}},
        "petstore": json.loads(PETSTORE.read_text()),
        "garbage": b"{not json at all", "list": [1, 2, 3],
        "aliases": ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
            f" *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
            for i in range(9)) + "openapi: 3.0.0\n").encode(),
        "deep": ('{"openapi": "3.0.0", "x": ' + "[" * 100_000 + "]" * 100_000 + "}").encode(),
    })
    async with discovery(running) as d, orchestrator(running) as o:
        cyclic = await d.discover("tree", uspto.url, "/specs/cyclic")
        assert cyclic.status == "registered", cyclic.error
        [add] = (await o.get_service("tree")).operations
        assert add.scopes == ["tree:admin", "tree:write"]  # the operation's own, not global
        body = add.request_body
        assert body is not None
        node = body.schema_
        assert "recursive" in node["properties"]["children"]["items"]["description"]
        assert "recursive" in json.dumps(node["properties"]["loop"])

        assert (await d.discover("fine-many", uspto.url, "/specs/fine_many")
                ).operation_count == 400
        petstore = await d.discover("petstore", uspto.url, "/specs/petstore")
        assert (petstore.status, petstore.operation_count) == ("registered", 8)  # Swagger 2.0
        expected = {"bomb": "expand beyond", "many": "600 operations", "swagger": "Swagger 1.2",
                    "garbage": "neither JSON nor YAML", "list": "not a JSON/YAML object",
                    "aliases": "more than", "deep": "neither JSON nor YAML"}
        for name, reason in expected.items():
            result = await d.discover(name, uspto.url, f"/specs/{name}")
            assert result.status == "failed" and reason in (result.error or ""), (name, result)
        nowhere = await d.discover("gone", f"http://127.0.0.1:{free_port()}")
        assert nowhere.status == "failed" and "unreachable" in (nowhere.error or "")
        missing = await d.discover("missing", uspto.url, "/specs/nope-404")
        assert missing.status == "failed"
        for name, where in (("loop", "/loop"), ("local-file", "file:///etc/passwd")):
            odd = await d.discover(name, uspto.url, where)
            assert odd.status == "failed" and "unreachable" in (odd.error or ""), odd

        names = {s.name for s in await o.list_services()}
        assert names == {"tree", "fine-many", "petstore"}
        async with httpx.AsyncClient(base_url=running.url_for("discovery")) as http:
            auth = {"Authorization": f"Bearer {token(running, 'services:write')}"}
            bad = await http.post("/discover", json={"name": "Bad Name!", "base_url": "ftp://x"},
                                  headers=auth)
            assert bad.status_code == 422
            assert {e["field"] for e in bad.json()["errors"]} == {"body.name", "body.base_url"}
            assert (await http.post("/discover", json={})).status_code == 401
            read_only = {"Authorization": f"Bearer {token(running, 'services:read')}"}
            assert (await http.post("/discover/all", headers=read_only)).status_code == 403


async def test_health_watch_announces_changes(
    running: Settings, uspto: Any, serve: Serve
) -> None:
    async with discovery(running) as d, orchestrator(running) as o:
        await d.discover("uspto", uspto.url)
        await d.discover("orchestrator", running.url_for("orchestrator"))
        assert await d.poll() == []  # discovery already recorded unknown → healthy
        eco = await o.ecosystem_health()
        assert eco.counts == {"healthy": 1, "degraded": 1}  # orchestrator lacks its callees
        assert eco.status == "degraded"

        await uspto.stop()
        changes = await d.poll()
        assert [(c.service, c.from_status, c.to_status) for c in changes] == [
            ("uspto", "healthy", "unreachable")]
        eco = await o.ecosystem_health()
        assert eco.status == "unhealthy"
        assert eco.services["uspto"].status == "unreachable"
        assert eco.services["uspto"].reason

        await serve(uspto.server.config.app, port=uspto.port)
        back = await d.poll()
        assert [(c.from_status, c.to_status) for c in back] == [("unreachable", "healthy")]
        history = await d.history("uspto")
        assert [(h.from_status, h.to_status) for h in history] == [
            ("unreachable", "healthy"), ("healthy", "unreachable"), ("unknown", "healthy")]
        assert {s.service: s.status for s in await d.watch_status()} == {
            "uspto": "healthy", "orchestrator": "degraded"}

    database = Database(running.database_url)
    bus = create_event_bus(running, database)
    try:
        events = [e for _, e in await bus.replay(limit=1000)
                  if e.type == "llmdocs.service.health_changed" and e.subject == "uspto"]
    finally:
        await database.dispose()
    assert [(e.data["from"], e.data["to"]) for e in events] == [
        ("unknown", "healthy"), ("healthy", "unreachable"), ("unreachable", "healthy")]
    assert events[1].data["reason"]


async def test_self_registration_and_cli(running: Settings, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    configured = running.model_copy(update={"discovery_url": running.url_for("discovery")})
    task = start_self_registration(configured, spec_of("orchestrator"))
    assert task is not None
    await asyncio.wait_for(task, 60)
    assert start_self_registration(running, spec_of("orchestrator")) is None

    for key in SERVICE_NAMES:
        monkeypatch.setenv(f"LLMDOCS_{key.upper()}_PORT", str(running.port_for(key)))
    monkeypatch.setenv("LLMDOCS_DATA_DIR", str(running.data_dir))
    monkeypatch.setenv("LLMDOCS_JWT_SECRET", running.signing_key)
    runner = CliRunner()

    async def cli(*args: str) -> str:
        result = await asyncio.to_thread(runner.invoke, cli_app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    assert "orchestrator" in await cli("services", "list")
    shown = json.loads(await cli("services", "show", "orchestrator", "--json"))
    assert shown["name"] == "orchestrator" and shown["operations"]
    tools = json.loads(await cli("services", "tools", "--format", "openai", "--json"))
    assert all(t["type"] == "function" for t in tools)
    assert "degraded" in await cli("services", "health")
    out = await cli("services", "discover", "orchestrator", running.url_for("orchestrator"))
    assert "unchanged" in out
