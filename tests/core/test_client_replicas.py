"""A service configured with several URLs: calls take its replicas in turn, and one that
stops answering is left out without losing a call, not even a POST."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core.test_client import flaky_router
from llmdocs.core.app import create_service_app
from llmdocs.core.client import ServiceClient, ServiceUnavailable
from llmdocs.core.config import Settings
from llmdocs.core.service import ServiceSpec
from llmdocs.services import HOOKS


async def _port_answering(client: ServiceClient, method: str) -> int:
    """The port of the replica that answered (each echoes the URL it was called at)."""
    port = httpx.URL((await client.request(method, "/echo/replica")).json()["url"]).port
    assert port is not None
    return port


async def test_replicas_take_calls_in_turn_and_a_stopped_one_is_left_out(
        serve: Any, settings: Settings) -> None:
    spec = ServiceSpec(key="docstore", name="flaky", title="Flaky", description="",
                       scope="demo", router=flaky_router)
    first, second = [await serve(create_service_app(spec, settings, hooks=HOOKS))
                     for _ in range(2)]
    configured = settings.model_copy(update={
        "docstore_url": f"{first.url}/, {second.url}", "inprocess_calls": False})
    assert configured.url_for("docstore") == first.url  # what it registers and links to
    async with ServiceClient.for_service(configured, caller="orchestrator",
                                         target="docstore") as client:
        ports = [await _port_answering(client, "GET") for _ in range(4)]
        assert sorted(ports) == sorted([first.port, second.port] * 2)
        await second.stop()
        # a POST is never retried, yet none is lost: a refused connection sent nothing
        ports = [await _port_answering(client, "POST") for _ in range(4)]
        assert ports == [first.port] * 4
        assert second.port not in [await _port_answering(client, "PUT") for _ in range(4)]


def _dies_as_it_opens(port: int) -> httpx.MockTransport:
    """Replicas where the one at `port` fails as anyio does when its peer dies while the
    connection opens; the others answer."""
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.port == port:
            raise AttributeError("'NoneType' object has no attribute 'getpeername'",
                                 name="getpeername", obj=None)
        return httpx.Response(201, json={"port": request.url.port})
    return httpx.MockTransport(handle)


async def test_a_replica_that_dies_as_the_connection_opens_is_unreachable_not_a_crash(
        ) -> None:
    urls = ["http://127.0.0.1:5001", "http://127.0.0.1:5002"]
    async with ServiceClient(urls, service="docstore", transport=_dies_as_it_opens(5001)
                             ) as client:
        answered = {(await client.request("POST", "/documents")).json()["port"]
                    for _ in range(3)}
        assert answered == {5002}  # nothing was sent, so even a POST goes elsewhere
    async with ServiceClient(urls[:1], service="docstore",
                             transport=_dies_as_it_opens(5001)) as client:
        with pytest.raises(ServiceUnavailable) as caught:
            await client.request("POST", "/documents")
        assert caught.value.status == 503


async def test_an_attribute_error_of_our_own_is_not_taken_for_an_outage() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise AttributeError("a bug", name="elsewhere", obj=None)
    async with ServiceClient("http://127.0.0.1:5001", service="docstore",
                             transport=httpx.MockTransport(handle)) as client:
        with pytest.raises(AttributeError):
            await client.request("POST", "/documents")
