"""The app factory: auth, errors, correlation, metrics, health and tracing, over real HTTP."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from fastapi import APIRouter, Depends
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, Field

from llmdocs.core.app import PUBLIC_PATHS, client_of, create_service_app
from llmdocs.core.auth import ALGORITHM, issue_token, require
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.core.errors import PROBLEM_JSON
from llmdocs.core.logging import log_formatter
from llmdocs.core.service import Call, ServiceSpec
from llmdocs.devservers import PostgresServer, free_port
from llmdocs.services import HOOKS, create_app
from llmdocs.services.gateway.client import GatewayClient

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class Widget(BaseModel):
    name: str = Field(min_length=1)
    size: int = Field(ge=0)


def demo_router() -> APIRouter:
    router = APIRouter()

    @router.post("/widgets/{widget_id}", dependencies=[Depends(require("demo:write"))])
    async def put_widget(widget_id: int, widget: Widget) -> dict[str, Any]:
        logging.getLogger("demo").info("widget stored")
        return {"id": widget_id, **widget.model_dump()}

    @router.get("/widgets", dependencies=[Depends(require("demo:read"))])
    async def list_widgets() -> list[str]:
        return ["a"]

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    return router


GATEWAY = "llmdocs.services.gateway.client:GatewayClient"


def demo_spec(calls: tuple[Call, ...] = ()) -> ServiceSpec:
    return ServiceSpec(key="docstore", name="demo", title="Demo", description="demo",
                       scope="demo", router=demo_router, calls=calls)


def auth(settings: Settings, *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, 'user:t', scopes)}"}


@pytest.fixture
async def demo(serve: Any, settings: Settings) -> Any:
    return await serve(create_service_app(demo_spec(), settings, hooks=HOOKS))


async def test_auth_tells_401_from_403(demo: Any, settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=demo.url) as http:
        missing = await http.get("/widgets")
        assert missing.status_code == 401
        assert missing.headers["content-type"] == PROBLEM_JSON
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization" in missing.json()["detail"]

        bad = await http.get("/widgets", headers={"Authorization": "Bearer not.a.jwt"})
        assert bad.status_code == 401

        forged = jwt.encode({"sub": "x", "scopes": ["*"], "iss": "llmdocs", "aud": "llmdocs",
                             "exp": int(time.time()) + 60}, "wrong-key-" * 4,
                            algorithm=ALGORITHM)
        assert (await http.get("/widgets", headers={"Authorization": f"Bearer {forged}"})
                ).status_code == 401

        expired = issue_token(settings, "user:t", ["*"], ttl_seconds=-10)
        answer = await http.get("/widgets", headers={"Authorization": f"Bearer {expired}"})
        assert answer.status_code == 401
        assert "expired" in answer.json()["detail"]

        wrong_scope = await http.get("/widgets", headers=auth(settings, "docs:read"))
        assert wrong_scope.status_code == 403
        assert "demo:read" in wrong_scope.json()["detail"]

        ok = await http.get("/widgets", headers=auth(settings, "demo:read"))
        assert ok.status_code == 200 and ok.json() == ["a"]
        family = await http.get("/widgets", headers=auth(settings, "demo:*"))
        assert family.status_code == 200
        read_only = await http.post("/widgets/1", json={"name": "w", "size": 1},
                                    headers=auth(settings, "demo:read"))
        assert read_only.status_code == 403


async def test_public_paths_need_no_token(demo: Any) -> None:
    async with httpx.AsyncClient(base_url=demo.url) as http:
        for path in ("/health", "/health/live", "/metrics", "/openapi.json", "/docs"):
            assert (await http.get(path)).status_code == 200, path


async def test_bad_input_is_problem_json_with_fields(demo: Any, settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=demo.url, headers=auth(settings, "*")) as http:
        answer = await http.post("/widgets/abc", json={"name": "", "size": -1})
        assert answer.status_code == 422
        assert answer.headers["content-type"] == PROBLEM_JSON
        problem = answer.json()
        assert {"type", "title", "status", "detail", "instance"} <= problem.keys()
        assert problem["instance"] == "/widgets/abc"
        fields = {e["field"] for e in problem["errors"]}
        assert fields == {"path.widget_id", "body.name", "body.size"}
        # the detail alone says why, for clients that print nothing else
        assert "body.size: Input should be greater than or equal to 0" in problem["detail"]
        long = await http.post("/widgets/1", json={"name": "x", "size": "9" * 10_000 + "x"})
        assert long.status_code == 422 and len(long.json()["detail"]) < 400

        not_json = await http.post("/widgets/1", content=b"{oops",
                                   headers={"content-type": "application/json"})
        assert not_json.status_code == 422
        assert not_json.headers["content-type"] == PROBLEM_JSON
        for kind in ("text/plain", "application/x-www-form-urlencoded", None):
            untyped = await http.post("/widgets/1", content=b'{"name": "a", "size": 1}',
                                      headers={"content-type": kind} if kind else {})
            assert untyped.status_code == 415 and "as JSON" in untyped.json()["detail"]
        # a body that cannot be read says why
        for body, why in ((b'{"name": "\xff", "size": 1}', "not valid UTF-8"),
                          (b"[" * 100_000 + b"]" * 100_000, "nested too deeply")):
            unreadable = await http.post("/widgets/1", content=body,
                                         headers={"content-type": "application/json"})
            assert unreadable.status_code == 400 and why in unreadable.json()["detail"]

        unknown = await http.get("/nowhere")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == PROBLEM_JSON


async def test_a_body_over_the_service_limit_is_a_413_before_it_is_read(
    serve: Any, settings: Settings
) -> None:
    """Declared or streamed (chunked, no length), a body past the limit is refused; one
    within it is served as before."""
    spec = dataclasses.replace(demo_spec(), max_body_bytes=1000)
    running = await serve(create_service_app(spec, settings, hooks=HOOKS))

    async def chunks(size: int) -> AsyncIterator[bytes]:
        yield b'{"name": "' + b"x" * size + b'", '
        yield b'"size": 1}'

    async with httpx.AsyncClient(base_url=running.url, headers=auth(settings, "*")) as http:
        fits = await http.post("/widgets/1", json={"name": "x" * 900, "size": 1})
        assert fits.status_code == 200
        declared = await http.post("/widgets/1", json={"name": "x" * 5000, "size": 1})
        streamed = await http.post("/widgets/1", content=chunks(5000),
                                   headers={"content-type": "application/json"})
        for answer in (declared, streamed):
            assert answer.status_code == 413, answer.text
            assert answer.headers["content-type"] == PROBLEM_JSON
            assert "limit of 1000 bytes" in answer.json()["detail"]
        small = await http.post("/widgets/1", content=chunks(10),
                                headers={"content-type": "application/json"})
        assert small.status_code == 200 and small.json()["size"] == 1


async def test_crash_is_problem_without_internals(demo: Any, settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=demo.url, headers=auth(settings, "*")) as http:
        answer = await http.get("/boom")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert "passwd" not in answer.text and "Traceback" not in answer.text


async def test_correlation_id_echoed_and_logged(demo: Any, settings: Settings) -> None:
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(log_formatter("json"))
    logging.getLogger().addHandler(handler)
    try:
        async with httpx.AsyncClient(base_url=demo.url, headers=auth(settings, "*")) as http:
            given = await http.post("/widgets/7", json={"name": "w", "size": 2},
                                    headers={"X-Correlation-ID": "req-123"})
            made = await http.get("/widgets")
            hostile = await http.get("/widgets", headers={"X-Correlation-ID": "x" * 500})
    finally:
        logging.getLogger().removeHandler(handler)
    assert given.headers["x-correlation-id"] == "req-123"
    assert len(made.headers["x-correlation-id"]) == 32
    assert hostile.headers["x-correlation-id"] != "x" * 500
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    app_line = [m for m in lines if m["event"] == "widget stored"]
    assert app_line and app_line[0]["correlation_id"] == "req-123"
    assert app_line[0]["service"] == "demo"
    request_lines = [m for m in lines if m["event"] == "request"]
    assert any(m["correlation_id"] == "req-123" and m["status"] == 200 for m in request_lines)


async def test_traceparent_flows_through(demo: Any, settings: Settings) -> None:
    parent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    async with httpx.AsyncClient(base_url=demo.url, headers=auth(settings, "*")) as http:
        answer = await http.get("/widgets", headers={"traceparent": parent})
    _version, trace_id, span_id, _flags = answer.headers["traceparent"].split("-")
    assert trace_id == TRACE_ID and span_id != "00f067aa0ba902b7"


async def test_trace_state_and_baggage_come_back(demo: Any, settings: Settings) -> None:
    """The caller's trace state and baggage stay in the request's context beside the
    server span, and go back out with it; a call without trace context starts a trace."""
    carried = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
               "tracestate": "vendor=abc", "baggage": "tenant=t1"}
    async with httpx.AsyncClient(base_url=demo.url, headers=auth(settings, "*")) as http:
        answer = await http.get("/widgets", headers=carried)
        fresh = await http.get("/widgets")
    assert answer.headers["traceparent"].split("-")[1] == TRACE_ID
    assert answer.headers["tracestate"] == "vendor=abc"
    assert answer.headers["baggage"] == "tenant=t1"
    assert fresh.headers["traceparent"].split("-")[1] not in (TRACE_ID, "0" * 32)
    assert "baggage" not in fresh.headers


async def test_metrics_parse_and_count_by_route_template(demo: Any, settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=demo.url, headers=auth(settings, "*")) as http:
        for i in range(3):
            await http.post(f"/widgets/{i}", json={"name": "w", "size": i})
        await http.get("/widgets", headers={"Authorization": ""})
        text = (await http.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = families["llmdocs_http_requests"].samples
    posts = [s for s in samples if s.name.endswith("_total")
             and s.labels == {"method": "POST", "route": "/widgets/{widget_id}", "status": "200"}]
    assert posts and posts[0].value == 3
    assert any(s.labels.get("status") == "401" for s in samples)
    assert "llmdocs_http_request_duration_seconds" in families
    assert "llmdocs_http_requests_in_flight" in families


async def test_health_degraded_when_database_down(serve: Any, settings: Settings) -> None:
    pg = PostgresServer().start()
    try:
        settings.database_url = pg.create_database("healthdb")
        running = await serve(create_service_app(demo_spec(), settings, hooks=HOOKS))
        async with httpx.AsyncClient(base_url=running.url) as http:
            up = (await http.get("/health")).json()
            assert up["status"] == "healthy"
            assert {d["name"]: d["status"] for d in up["dependencies"]} == {
                "database": "up", "events": "up"}
            assert up["resources"]["rss_bytes"] > 0 and up["resources"]["open_files"] > 0
            pg.stop()
            down = await http.get("/health")
            assert down.status_code == 200
            report = down.json()
            assert report["status"] == "degraded"
            database = next(d for d in report["dependencies"] if d["name"] == "database")
            assert database["status"] == "down" and database["error"]
            assert (await http.get("/health/live")).json()["status"] == "alive"
    finally:
        pg.cleanup()


async def test_servers_leave_the_process_signals_as_they_found_them(
    serve: Any, settings: Settings
) -> None:
    """Servers stopped in the order they started leave Ctrl-C and SIGTERM to the
    process: uvicorn's own server class left a stopped server's handler in place, which
    swallowed them (a test run could no longer be interrupted)."""
    signals = (signal.SIGINT, signal.SIGTERM)
    before = [signal.getsignal(sig) for sig in signals]
    first = await serve(create_service_app(demo_spec(), settings, hooks=HOOKS))
    second = await serve(create_service_app(demo_spec(), settings, hooks=HOOKS))
    await first.stop()
    await second.stop()
    assert [signal.getsignal(sig) for sig in signals] == before


async def test_clients_are_built_once_as_declared_and_closed(settings: Settings) -> None:
    settings.http_timeout_seconds = 10.0
    app = create_service_app(demo_spec(calls=(Call("gateway", GATEWAY, waits_up_to=120.0),)),
                             settings, hooks=HOOKS)
    async with app.router.lifespan_context(app):
        gateway = client_of(app, GatewayClient)
        assert gateway is client_of(app, GatewayClient)
        assert gateway.http.timeout.read == 120.0 and gateway.service == "gateway"
        assert not gateway.http.is_closed
    assert gateway.http.is_closed


async def test_a_declared_client_must_be_a_service_client(settings: Settings) -> None:
    app = create_service_app(demo_spec(calls=(Call("gateway", "llmdocs.core.config:Settings"),)),
                             settings, hooks=HOOKS)
    with pytest.raises(TypeError, match="no ServiceClient"):
        async with app.router.lifespan_context(app):
            pass


async def test_health_degraded_when_called_service_down(serve: Any, settings: Settings) -> None:
    port = free_port()
    settings.gateway_url = f"http://127.0.0.1:{port}"
    settings.http_retries = 1
    calling = demo_spec(calls=(Call("gateway", GATEWAY),))
    caller = await serve(create_service_app(calling, settings, hooks=HOOKS))
    async with httpx.AsyncClient(base_url=caller.url) as http:
        report = (await http.get("/health")).json()
        assert report["status"] == "degraded"
        gateway = next(d for d in report["dependencies"] if d["name"] == "gateway")
        assert gateway["status"] == "down" and gateway["kind"] == "service"

        await serve(create_app("gateway", settings), port=port)
        report = (await http.get("/health")).json()
        assert report["status"] == "healthy"
        gateway = next(d for d in report["dependencies"] if d["name"] == "gateway")
        assert gateway["status"] == "up" and gateway["latency_ms"] >= 0

        shallow = (await http.get("/health", params={"deep": "false"})).json()
        assert [d["name"] for d in shallow["dependencies"]] == ["database", "events"]


@pytest.mark.parametrize("key", SERVICE_NAMES)
async def test_every_service_route_needs_a_token(key: str, settings: Settings, serve: Any) -> None:
    app = create_app(key, settings)
    running = await serve(app)
    async with httpx.AsyncClient(base_url=running.url) as http:
        assert (await http.get("/health")).json()["service"] == app.state.spec.name
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert paths["/info"]["get"]["security"] == [
            {"bearer": [f"{app.state.spec.scope}:read"]}]
        for path, operations in paths.items():
            if path in PUBLIC_PATHS:
                continue
            concrete = re.sub(r"\{[^}]+\}", "1", path)
            for method, operation in operations.items():
                assert operation["security"][0]["bearer"] is not None, (method, path)
                answer = await http.request(method.upper(), concrete)
                assert answer.status_code == 401, (method, path)
        info = await http.get("/info", headers=auth(settings, f"{app.state.spec.scope}:read"))
        assert info.status_code == 200 and info.json()["key"] == key
        # a body past the service's bound is refused before it is read (the doc-store
        # bounds its own per route, by its configured upload limit)
        limit = app.state.spec.max_body_bytes
        assert (limit is None) == (key == "docstore"), key
        if limit is not None:
            large = await http.post("/info", content=b"x" * (limit + 1))
            assert large.status_code == 413, key


def test_a_verified_token_still_expires(settings: Settings) -> None:
    from llmdocs.core.auth import verify_token
    from llmdocs.core.errors import Problem

    token = issue_token(settings, "user:t", ["docs:read"], ttl_seconds=2)
    assert verify_token(settings, token).subject == "user:t"
    assert verify_token(settings, token).allows("docs:read")  # served from the cache
    time.sleep(2.1)  # exp has whole-second resolution
    with pytest.raises(Problem) as expired:
        verify_token(settings, token)
    assert expired.value.status == 401 and "expired" in expired.value.detail


def test_a_token_subject_must_fit_where_it_is_stored(settings: Settings) -> None:
    """The subject becomes the owner of runs, executions and sessions: one longer than
    their columns, or with control characters (NUL, which PostgreSQL refuses), is a 401
    at the door, not a 500 when the first thing it makes is stored."""
    from llmdocs.core.auth import MAX_SUBJECT, verify_token
    from llmdocs.core.errors import Problem

    assert verify_token(settings, issue_token(settings, "u" * MAX_SUBJECT, ["*"])).subject
    for subject in ("u" * (MAX_SUBJECT + 1), "user:a\x00b", "user:a\nb", ""):
        with pytest.raises(Problem) as refused:
            verify_token(settings, issue_token(settings, subject, ["*"]))
        assert refused.value.status == 401 and "subject" in refused.value.detail


def test_a_verified_token_is_not_taken_for_another_audience(settings: Settings) -> None:
    """The cache of verified tokens remembers what verified each one: a token accepted
    for one audience or issuer is still refused by a service expecting another."""
    from llmdocs.core.auth import verify_token
    from llmdocs.core.errors import Problem

    token = issue_token(settings, "user:t", ["docs:read"])
    assert verify_token(settings, token).subject == "user:t"  # now cached
    for other in ({"jwt_audience": "elsewhere"}, {"jwt_issuer": "someone-else"}):
        with pytest.raises(Problem) as refused:
            verify_token(settings.model_copy(update=other), token)
        assert refused.value.status == 401
