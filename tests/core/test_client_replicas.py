"""A service configured with several URLs: calls take its replicas in turn, and one that
stops answering is left out without losing a call, not even a POST."""

from __future__ import annotations

from typing import Any

import httpx

from core.test_client import flaky_router
from llmdocs.core.app import create_service_app
from llmdocs.core.client import ServiceClient
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
