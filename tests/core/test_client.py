"""The service client base against a real service over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from opentelemetry import trace

from llmdocs.core.app import create_service_app
from llmdocs.core.auth import Principal, require
from llmdocs.core.client import (
    InProcessTransport,
    NotFound,
    ServiceClient,
    ServiceUnavailable,
    TokenSource,
    Unauthorized,
    Unprocessable,
    UpstreamError,
)
from llmdocs.core.config import Settings
from llmdocs.core.errors import Problem
from llmdocs.core.middleware import correlation_id_var
from llmdocs.core.service import ServiceSpec
from llmdocs.devservers import free_port
from llmdocs.services import HOOKS


def flaky_router() -> APIRouter:
    router = APIRouter()
    calls: dict[str, int] = {}

    def fail_first(name: str, times: int) -> None:
        calls[name] = calls.get(name, 0) + 1
        if calls[name] <= times:
            raise Problem(503, "not yet")

    @router.get("/flaky")
    async def flaky_get(fails: int = 2) -> dict[str, int]:
        fail_first("get", fails)
        return {"calls": calls["get"]}

    @router.post("/flaky")
    async def flaky_post() -> dict[str, int]:
        fail_first("post", 1)
        return {"calls": calls["post"]}

    @router.get("/whoami")
    async def whoami(
        request: Request, principal: Principal = Depends(require("demo:read"))
    ) -> dict[str, Any]:
        return {"sub": principal.subject,
                "correlation_id": request.headers.get("x-correlation-id"),
                "traceparent": request.headers.get("traceparent")}

    @router.api_route("/echo/{name}", methods=["GET", "POST", "PUT"])
    async def echo(request: Request) -> dict[str, Any]:
        return {"method": request.method, "url": str(request.url),
                "headers": request.headers.items(), "body": (await request.body()).decode()}

    @router.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        raise Problem(404, f"No item {item_id}.")

    @router.get("/crash")
    async def crash() -> None:
        raise RuntimeError("a bug")

    @router.get("/lines")
    async def lines() -> StreamingResponse:
        async def each() -> AsyncIterator[bytes]:
            for line in (b"one\n", b"two\n", b"three\n"):
                yield line

        return StreamingResponse(each(), media_type="text/plain")

    return router


@pytest.fixture
async def service(serve: Any, settings: Settings) -> Any:
    spec = ServiceSpec(key="docstore", name="flaky", title="Flaky", description="",
                       scope="demo", router=flaky_router)
    return await serve(create_service_app(spec, settings, hooks=HOOKS))


def client_for(service: Any, settings: Settings, **kwargs: Any) -> ServiceClient:
    return ServiceClient(service.url, service="flaky",
                         token=TokenSource(settings, "orchestrator"), **kwargs)


async def test_idempotent_calls_are_retried_others_not(service: Any, settings: Settings) -> None:
    async with client_for(service, settings, retries=3) as client:
        assert (await client.get_json("/flaky", params={"fails": 2})) == {"calls": 3}
        with pytest.raises(UpstreamError) as failed:
            await client.post_json("/flaky")
        assert failed.value.status == 503 and failed.value.problem["detail"] == "not yet"
        # the POST was sent once only: the next one succeeds as the second call
        assert (await client.post_json("/flaky")) == {"calls": 2}


async def test_retries_give_up(service: Any, settings: Settings) -> None:
    async with client_for(service, settings, retries=2) as client:
        with pytest.raises(UpstreamError):
            await client.get_json("/flaky", params={"fails": 5})
        # exactly two attempts were made: this call is the third the service sees
        assert (await client.get_json("/flaky", params={"fails": 0})) == {"calls": 3}


async def test_errors_map_to_typed_exceptions(service: Any, settings: Settings) -> None:
    async with client_for(service, settings) as client:
        with pytest.raises(NotFound) as missing:
            await client.get_json("/items/5")
        assert missing.value.problem["detail"] == "No item 5."
        with pytest.raises(Unprocessable) as invalid:
            await client.get_json("/items/abc")
        assert invalid.value.problem["errors"][0]["field"] == "path.item_id"
    async with ServiceClient(service.url, service="flaky") as anonymous:
        with pytest.raises(Unauthorized):
            await anonymous.get_json("/whoami")


async def test_service_token_correlation_and_trace_propagate(
    service: Any, settings: Settings
) -> None:
    token = correlation_id_var.set("corr-42")
    try:
        with trace.get_tracer("test").start_as_current_span("caller") as span:
            async with client_for(service, settings) as client:
                seen = await client.get_json("/whoami")
    finally:
        correlation_id_var.reset(token)
    assert seen["sub"] == "service:orchestrator"
    assert seen["correlation_id"] == "corr-42"
    assert seen["traceparent"].split("-")[1] == format(span.get_span_context().trace_id, "032x")


async def test_unreachable_service_is_typed(settings: Settings) -> None:
    async with ServiceClient(f"http://127.0.0.1:{free_port()}", service="gone",
                             retries=2) as client:
        with pytest.raises(ServiceUnavailable) as down:
            await client.get_json("/health")
    assert "unreachable" in str(down.value)


async def test_in_process_transport_uses_same_code_path(settings: Settings) -> None:
    from llmdocs.core.client import local_apps
    from llmdocs.services import create_app
    from llmdocs.services.docstore.client import DocStoreClient

    app = create_app("docstore", settings)
    local_apps["docstore"] = app
    try:
        async with (
            app.router.lifespan_context(app),
            DocStoreClient.for_service(settings, caller="interpreter") as client,
        ):
            info = await client.info()
    finally:
        local_apps.pop("docstore")
    assert info["service"] == "doc-store" and info["caller"] == "service:interpreter"


async def test_in_process_calls_answer_as_over_http(settings: Settings) -> None:
    """The in-process transport runs the same app: auth, errors and streamed bodies
    answer as over a socket, and a crash in the app is its 500 problem document, not an
    exception raised in the caller."""
    spec = ServiceSpec(key="docstore", name="flaky", title="Flaky", description="",
                       scope="demo", router=flaky_router)
    app = create_service_app(spec, settings, hooks=HOOKS)
    token = TokenSource(settings, "orchestrator")
    async with (
        app.router.lifespan_context(app),
        ServiceClient("http://docstore.local", service="flaky", token=token,
                      transport=InProcessTransport(app)) as client,
    ):
        seen = await client.get_json("/whoami")
        with pytest.raises(UpstreamError) as crashed:
            await client.get_json("/crash")
        with pytest.raises(Unprocessable):
            await client.get_json("/items/abc")
        async with client.http.stream("GET", "/lines",
                                      headers={"Authorization": f"Bearer {token()}"}
                                      ) as response:
            lines = [line async for line in response.aiter_lines()]
        answer = await client.request("GET", "/flaky", params={"fails": 0})
    assert seen["sub"] == "service:orchestrator"
    assert crashed.value.status == 500 and "internal error" in crashed.value.problem["detail"]
    assert lines == ["one", "two", "three"]
    assert len(answer.headers["x-correlation-id"]) == 32


async def test_in_process_request_is_the_one_a_socket_carries(
    service: Any, settings: Settings
) -> None:
    """The in-process path builds its request without the HTTP client: the app sees the
    same method, URL, headers and body as over a socket, whatever the call passes."""
    spec = ServiceSpec(key="docstore", name="flaky", title="Flaky", description="",
                       scope="demo", router=flaky_router)
    app = create_service_app(spec, settings, hooks=HOOKS)
    token = TokenSource(settings, "orchestrator")
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/echo/a", {}),
        ("GET", "echo/b?x=1", {"params": {"y": "2 3", "z": ["4", "5"]}}),
        ("POST", "/echo/c", {"json": {"k": ["v", 1]}, "headers": {"Accept": "text/plain"}}),
        ("PUT", "/echo/d%20e", {"content": b"raw bytes", "timeout": 5.0,
                                "headers": {"X-Extra": "1"}}),
        ("GET", "/echo/a", {"params": {"again": "1"}}),  # a path seen before, new params
    ]
    async with (
        app.router.lifespan_context(app),
        ServiceClient(service.url, service="flaky", token=token) as remote,
        ServiceClient(service.url, service="flaky", token=token,
                      transport=InProcessTransport(app)) as local,
    ):
        for method, path, kwargs in calls:
            over_socket = (await remote.request(method, path, **kwargs)).json()
            in_process = (await local.request(method, path, **kwargs)).json()
            assert in_process == over_socket, (method, path)
            assert over_socket["url"].startswith(service.url)
