"""The registry and tool calls attacked by a user (issue 18, items 1-3 and 6): a tool call
acts for its caller, never as the orchestrator (confused deputy); no llmdocs token ever
reaches a service a user registered; registrations have owners and llmdocs' own names are
reserved; tool calls never connect to a blocked network; a bad health path can neither be
registered nor fail the health watch. Real services over HTTP on loopback; the user's
server is a local one that records what it receives."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import text

from badinput import assert_refused
from llmdocs.core.auth import issue_token, service_token, verify_token
from llmdocs.core.config import LINK_LOCAL, SERVICE_NAMES, Settings
from llmdocs.core.db import Database
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.settings import OrchestratorSettings
from llmdocs.services.orchestrator.tools import ToolCaller, tool_specs

Serve = Callable[..., Awaitable[Any]]
# what the llmdocs kernel's /health answers: a user's server can answer it too
KERNEL_HEALTH = {"status": "healthy", "service": "orchestrator", "version": "0.1.0",
                 "uptime_seconds": 1.0, "dependencies": [], "resources": {}}
GRAB = {"operation_id": "grab", "method": "get", "path": "/grab"}


def recorder(seen: list[tuple[str, dict[str, str]]]) -> FastAPI:
    """A user's server posing as an llmdocs service: it records the path and the
    headers of every request it receives."""
    api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @api.middleware("http")
    async def record(request: Request, call_next: Any) -> Response:
        seen.append((request.url.path, {name: ", ".join(request.headers.getlist(name))
                                        for name in request.headers}))  # repeats joined
        response: Response = await call_next(request)
        return response

    @api.get("/health")
    async def health() -> dict[str, Any]:
        return KERNEL_HEALTH

    @api.get("/openapi.json")
    async def spec() -> dict[str, Any]:
        return {"openapi": "3.1.0", "info": {"title": "grabber", "version": "1"},
                "paths": {"/grab": {"get": {"operationId": "grab",
                                            "responses": {"200": {"description": "ok"}}}}}}

    @api.get("/grab")
    async def grab() -> dict[str, bool]:
        return {"grabbed": True}

    return api


@dataclass
class Stack:
    settings: Settings
    orchestrator: httpx.AsyncClient
    discovery: httpx.AsyncClient
    docstore: httpx.AsyncClient
    server: Any  # the user's recording server
    seen: list[tuple[str, dict[str, str]]]

    def authorizations(self) -> list[tuple[str, str | None]]:
        """Each request the user's server received: its path and Authorization."""
        return [(path, headers.get("authorization")) for path, headers in self.seen]


def bearer(settings: Settings, subject: str, *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, subject, scopes)}"}


def agent(settings: Settings) -> dict[str, str]:
    """The discovery-agent's own service token."""
    return {"Authorization": f"Bearer {service_token(settings, 'discovery')}"}


def registration(name: str, base_url: str, *operations: dict[str, Any],
                 spec_hash: str = "a" * 64, **fields: Any) -> dict[str, Any]:
    return {"name": name, "base_url": base_url, "spec_hash": spec_hash,
            "operations": list(operations or [GRAB]), **fields}


@pytest.fixture
async def stack(settings: Settings, serve: Serve, monkeypatch: pytest.MonkeyPatch
                ) -> AsyncIterator[Stack]:
    """The orchestrator, the discovery-agent and the doc-store on their configured
    ports, and a user's recording server."""
    monkeypatch.setenv("LLMDOCS_DISCOVERY_DISCOVER_ON_START", "false")
    monkeypatch.setenv("LLMDOCS_DISCOVERY_WATCH_INTERVAL_SECONDS", "0")
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES})
    for key in ("orchestrator", "discovery", "docstore"):
        await serve(create_app(key, eco), port=eco.port_for(key))
    seen: list[tuple[str, dict[str, str]]] = []
    server = await serve(recorder(seen))
    async with httpx.AsyncClient(base_url=eco.url_for("orchestrator")) as o, \
            httpx.AsyncClient(base_url=eco.url_for("discovery")) as d, \
            httpx.AsyncClient(base_url=eco.url_for("docstore")) as s:
        yield Stack(eco, o, d, s, server, seen)


async def tool_named(stack: Stack, service: str, method: str, path: str) -> str:
    tools = (await stack.orchestrator.get("/tools", params={
        "format": "langchain", "service": service}, headers=agent(stack.settings))).json()
    return next(str(t["name"]) for t in tools if (t["method"], t["path"]) == (method, path))


# --- item 2: the confused deputy ---------------------------------------------------

async def test_a_tool_call_acts_with_the_callers_scopes(stack: Stack) -> None:
    """A token that may not delete a document directly may not through the doc-store's
    tool either (it deleted it: 204 with the orchestrator's own token); one that may,
    still can; the agent's tools are the same calls."""
    eco = stack.settings
    admin = issue_token(eco, "user:admin", ["*"])
    async with DocStoreClient.for_service(eco, token=admin) as docs:
        stored = await docs.put("The launch plan.", title="plan")
    found = await stack.discovery.post("/discover", headers=bearer(eco, "user:admin", "*"),
                                       json={"name": "doc-store",
                                             "base_url": eco.url_for("docstore")})
    assert found.json()["status"] == "registered", found.text
    delete = await tool_named(stack, "doc-store", "delete", "/documents/{document_id}")
    mallory = bearer(eco, "user:mallory", "workflows:*", "docs:read")
    path = f"/documents/{stored.document_id}"

    assert (await stack.docstore.delete(path, headers=mallory)).status_code == 403
    through = await stack.orchestrator.post(f"/tools/{delete}/call", headers=mallory,
                                            json={"arguments": {"document_id":
                                                                stored.document_id}})
    assert through.status_code == 200, through.text
    assert through.json()["status"] == 403, through.json()
    assert "docs:write" in through.json()["body"]["detail"]

    token = issue_token(eco, "user:mallory", ["workflows:*", "docs:read"])
    async with OrchestratorClient.for_service(eco, token=admin) as o:
        details = [await o.get_service("doc-store")]
    tools = {t.name: t for t in ToolCaller(eco, OrchestratorSettings(), verify_token(eco, token),
                                           token).structured_tools(tool_specs(details))}
    answer = await tools[delete].ainvoke({"document_id": stored.document_id})
    assert '"status":403' in answer
    assert (await stack.docstore.get(path, headers={"Authorization": f"Bearer {admin}"})
            ).status_code == 200  # it survived

    writer = bearer(eco, "user:ann", "workflows:*", "docs:*")
    allowed = await stack.orchestrator.post(f"/tools/{delete}/call", headers=writer,
                                            json={"arguments": {"document_id":
                                                                stored.document_id}})
    assert allowed.json()["status"] == 204, allowed.json()
    assert (await stack.docstore.get(path, headers={"Authorization": f"Bearer {admin}"})
            ).status_code == 404


# --- item 1: service tokens never leave llmdocs --------------------------------------

async def test_a_users_service_never_receives_an_llmdocs_token(stack: Stack) -> None:
    """Registered by a user with `auth: service_token`, the user's server received the
    orchestrator's token on a tool call; now that is refused, and registered as
    third-party its tool calls carry no token at all."""
    eco, url = stack.settings, stack.server.url
    mallory = bearer(eco, "user:mallory", "workflows:*")
    refused = await stack.orchestrator.post("/registry/services", headers=mallory,
                                            json=registration("grabber", url,
                                                              auth="service_token"))
    assert_refused(refused, "auth")
    assert (await stack.orchestrator.get("/registry/services/grabber", headers=mallory)
            ).status_code == 404

    created = await stack.orchestrator.post("/registry/services", headers=mallory,
                                            json=registration("grabber", url))
    assert created.status_code == 201, created.text
    called = await stack.orchestrator.post("/tools/grabber__grab/call", headers=mallory,
                                           json={"arguments": {}})
    assert called.json() == {"tool": "grabber__grab", "status": 200,
                             "body": {"grabbed": True}}
    assert stack.authorizations() == [("/grab", None)]


async def test_third_party_calls_carry_only_what_the_operator_configured(
        stack: Stack, serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials configured for a service name go to it alone, whatever a header
    argument says; the caller's own token only to a service the operator lists."""
    monkeypatch.setenv("LLMDOCS_ORCHESTRATOR_TOOL_CREDENTIALS",
                       '{"keyed": {"X-Api-Key": "k-123"}}')
    monkeypatch.setenv("LLMDOCS_ORCHESTRATOR_FORWARD_CALLER_TOKEN", '["forwarded"]')
    eco = stack.settings.model_copy(update={"orchestrator_port": free_port()})
    await serve(create_app("orchestrator", eco), port=eco.port_for("orchestrator"))
    own = issue_token(eco, "user:ann", ["workflows:*"])
    async with httpx.AsyncClient(base_url=eco.url_for("orchestrator"),
                                 headers={"Authorization": f"Bearer {own}"}) as o:
        keyed = {**GRAB, "parameters": [{"name": "x-api-key", "location": "header"}]}
        for name in ("keyed", "forwarded", "plain"):
            assert (await o.post("/registry/services", json=registration(
                name, stack.server.url, keyed))).status_code == 201
            called = await o.post(f"/tools/{name}__grab/call",
                                  json={"arguments": {"x-api-key": "mine"}})
            assert called.json()["status"] == 200, called.json()
    sent = [(headers.get("x-api-key"), headers.get("authorization"))
            for _, headers in stack.seen]
    assert sent == [("k-123", None), ("mine", f"Bearer {own}"), ("mine", None)]


async def test_llmdocs_names_are_called_at_their_configured_address(stack: Stack) -> None:
    """A reserved name registered elsewhere (by a service, or before names were
    reserved) is still called where llmdocs' service is configured, never there."""
    eco, url = stack.settings, stack.server.url
    listing = {"operation_id": "list", "method": "get", "path": "/registry/services"}
    made = await stack.orchestrator.post("/registry/services", headers=agent(eco), json=(
        registration("orchestrator", url, listing, auth="service_token")))
    assert made.status_code == 201, made.text
    called = await stack.orchestrator.post(
        "/tools/orchestrator__list/call", headers=bearer(eco, "user:ann", "workflows:*"),
        json={"arguments": {}})
    assert called.json()["status"] == 200
    assert [s["name"] for s in called.json()["body"]] == ["orchestrator"]
    assert stack.authorizations() == []


async def test_registrations_have_owners_and_llmdocs_names_are_reserved(
        stack: Stack) -> None:
    eco, url = stack.settings, stack.server.url
    o = stack.orchestrator
    ann = bearer(eco, "user:ann", "workflows:read", "workflows:write")
    mallory = bearer(eco, "user:mallory", "workflows:read", "workflows:write")
    admin = bearer(eco, "user:root", "workflows:*")  # `*` holds workflows:admin too
    made = await o.post("/registry/services", headers=ann, json=registration("ann-api", url))
    assert made.status_code == 201, made.text
    assert (await o.post("/registry/services", headers=agent(eco), json=registration(
        "doc-store", eco.url_for("docstore"), auth="service_token"))).status_code == 201
    before = {s["name"]: s for s in (await o.get("/registry/services", headers=ann)).json()}
    assert before["ann-api"]["owner"] == "user:ann"
    assert before["doc-store"]["owner"] == "service:discovery"

    for name in ("ann-api", "doc-store"):
        for who in (mallory, *((admin,) if name == "doc-store" else ())):
            overwrite = await o.post("/registry/services", headers=who, json=registration(
                name, url, spec_hash="b" * 64))
            removed = await o.delete(f"/registry/services/{name}", headers=who)
            health = await o.put(f"/registry/services/{name}/health", headers=who,
                                 json={"status": "unhealthy", "reason": "mine now"})
            for answer in (overwrite, removed, health):
                assert answer.status_code == 403, (name, answer.text)
                assert answer.headers["content-type"].startswith("application/problem+json")
    squatted = await o.post("/registry/services", headers=mallory,
                            json=registration("llm-gateway", url))
    assert squatted.status_code == 403 and "reserved" in squatted.json()["detail"]
    assert {s["name"]: s for s in (await o.get("/registry/services", headers=ann)).json()
            } == before

    updated = await o.post("/registry/services", headers=ann,
                           json=registration("ann-api", url, spec_hash="c" * 64))
    assert updated.status_code == 200 and updated.json()["changed"]
    assert (await o.delete("/registry/services/ann-api", headers=admin)).status_code == 204


async def test_old_registrations_without_an_owner_are_the_services(stack: Stack) -> None:
    eco = stack.settings
    made = await stack.orchestrator.post("/registry/services", headers=agent(eco),
                                         json=registration("legacy", stack.server.url))
    assert made.status_code == 201
    database = Database(eco.database_url)
    try:
        async with database.transaction() as session:
            await session.execute(text("UPDATE orchestrator_services SET owner = NULL"))
    finally:
        await database.dispose()
    user = bearer(eco, "user:ann", "workflows:write")
    assert (await stack.orchestrator.delete("/registry/services/legacy", headers=user)
            ).status_code == 403
    assert (await stack.orchestrator.delete("/registry/services/legacy", headers=agent(eco))
            ).status_code == 204


async def test_discovery_marks_only_llmdocs_own_services_as_taking_tokens(
        stack: Stack) -> None:
    """A user's server that answers /health as the llmdocs kernel does was registered as
    taking llmdocs' tokens; now it is third-party and the user's, and llmdocs' own names
    are discovered only at their configured addresses."""
    eco, url = stack.settings, stack.server.url
    # registered for the user, so with the user's own right to register
    ann = bearer(eco, "user:ann", "services:write", "workflows:read", "workflows:write")
    faked = await stack.discovery.post("/discover", headers=ann,
                                       json={"name": "fake-kernel", "base_url": url})
    assert faked.json()["status"] == "registered", faked.text
    fake = (await stack.orchestrator.get("/registry/services/fake-kernel", headers=ann)).json()
    assert (fake["auth"], fake["owner"]) == ("none", "user:ann")

    posing = await stack.discovery.post("/discover", headers=ann,
                                        json={"name": "doc-store", "base_url": url})
    assert_refused(posing, "base_url")
    assert (await stack.orchestrator.get("/registry/services/doc-store", headers=ann)
            ).status_code == 404

    ours = await stack.discovery.post("/discover", headers=ann, json={
        "name": "orchestrator", "base_url": eco.url_for("orchestrator") + "/"})
    assert ours.json()["status"] == "registered", ours.text
    detail = (await stack.orchestrator.get("/registry/services/orchestrator",
                                           headers=ann)).json()
    assert (detail["auth"], detail["owner"]) == ("service_token", "service:discovery")
    assert all(auth is None for _, auth in stack.authorizations())


# --- item 3: SSRF through tool calls ---------------------------------------------------

async def test_tool_calls_never_connect_to_a_blocked_network(
        stack: Stack, serve: Serve) -> None:
    """Link-local addresses (cloud metadata) are refused before any connection; with
    loopback blocked too, a real server there is not contacted; the same registration
    is called when loopback is not blocked."""
    eco = stack.settings
    guarded = eco.model_copy(update={"orchestrator_port": free_port(), "blocked_networks": [
        *LINK_LOCAL, ip_network("127.0.0.0/8"), ip_network("::1/128")]})
    await serve(create_app("orchestrator", guarded), port=guarded.port_for("orchestrator"))
    user = bearer(eco, "user:ann", "workflows:*")
    targets = {"metadata": "http://169.254.169.254", "link-local": "http://[fe80::1]",
               "mapped": "http://[::ffff:169.254.169.254]", "loopback": stack.server.url,
               "localhost": f"http://localhost:{stack.server.port}"}
    async with httpx.AsyncClient(base_url=guarded.url_for("orchestrator"),
                                 headers=user) as o:
        for name, url in targets.items():
            made = await o.post("/registry/services", json=registration(name, url))
            assert made.status_code == 201, made.text
            started = time.monotonic()
            called = await o.post(f"/tools/{name}__grab/call", json={"arguments": {}})
            assert called.status_code == 422, (name, called.text)
            assert "in the blocked network" in called.json()["detail"], called.json()
            assert time.monotonic() - started < 2.0  # refused, not a connect timing out
    assert stack.authorizations() == []

    control = await stack.orchestrator.post("/tools/loopback__grab/call", headers=user,
                                            json={"arguments": {}})
    assert control.json()["status"] == 200
    assert stack.authorizations() == [("/grab", None)]


# --- item 6: a health path that breaks every poll --------------------------------------

async def test_a_bad_health_path_is_refused_and_cannot_fail_the_poll(stack: Stack) -> None:
    """`/\\u0003` was accepted, and from then on every poll of the health watch was a
    500; now it is a 422, and a stored one (from before) fails only its own probe."""
    eco, url = stack.settings, stack.server.url
    user = bearer(eco, "user:ann", "workflows:*", "services:*")
    for bad in ("/\u0003", "health", "/he alth", "/\u202ehealth"):
        refused = await stack.orchestrator.post("/registry/services", headers=user,
                                                json=registration("odd", url, health_path=bad))
        assert_refused(refused, "health_path")
    for name in ("good", "stored-bad"):
        made = await stack.orchestrator.post("/registry/services", headers=user,
                                             json=registration(name, url))
        assert made.status_code == 201
    database = Database(eco.database_url)
    try:
        async with database.transaction() as session:
            await session.execute(text("UPDATE orchestrator_services SET health_path = :p "
                                       "WHERE name = 'stored-bad'"), {"p": "/\u0003"})
    finally:
        await database.dispose()

    for _ in range(2):  # every poll, not only the first
        polled = await stack.discovery.post("/watch/poll", headers=user)
        assert polled.status_code == 200, polled.text
    states = {s["service"]: s for s in (await stack.discovery.get(
        "/watch/status", headers=user)).json()}
    assert states["good"]["status"] == "healthy"
    assert states["stored-bad"]["status"] == "unreachable"
    assert "InvalidURL" in states["stored-bad"]["reason"]
