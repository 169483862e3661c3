"""`llmdocs up` for the fuzzer, run as `python -m fuzz.stack` (configured by the
environment as `llmdocs up` is): every service in one process on loopback, its gateway
answering from a fake of a paid model API served in the same process, and no traffic
leaving loopback, whatever URLs the fuzzer makes up (specs to discover, services to
register, health paths)."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
from typing import Any

import uvicorn

from llmdocs.core.config import Settings
from llmdocs.runtime import Server, up
from llmdocs.services import all_specs
from services.gateway.fakes import Upstream, openai_app

FAKE_PORT = "FUZZ_FAKE_MODEL_PORT"  # where the fake model API listens


def is_loopback(host: str | bytes | None) -> bool:
    if host is None:  # a listening socket's "any address" lookup
        return True
    name = (host.decode(errors="replace") if isinstance(host, bytes) else host).lower()
    name = name.strip("[]").split("%")[0].rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def loopback_only() -> None:
    """Refuse, in this process, every name lookup and connection that is not loopback:
    a fuzzed URL then fails as an unknown host does. asyncio's loop (not uvloop, whose
    libuv lookups Python cannot see) resolves through `socket.getaddrinfo` and connects
    through `socket.socket.connect`, and so do aiohttp's and httpx's."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"{host!r}: only loopback here")
        return real_getaddrinfo(host, port, *args, **kwargs)

    def refused(address: Any) -> bool:
        return isinstance(address, tuple) and not is_loopback(address[0])

    def connect(self: Any, address: Any) -> None:
        if refused(address):
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"{address!r}: only loopback")
        real_connect(self, address)

    def connect_ex(self: Any, address: Any) -> int:
        return errno.ECONNREFUSED if refused(address) else real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]


async def main() -> None:
    fake = Server(uvicorn.Config(openai_app(Upstream()), host="127.0.0.1",
                                 port=int(os.environ[FAKE_PORT]), log_config=None,
                                 access_log=False, lifespan="off"))
    serving_fake = asyncio.create_task(fake.serve())
    try:
        await up(Settings(), all_specs())  # until SIGTERM, as `llmdocs up`
    finally:
        fake.should_exit = True
        await serving_fake


if __name__ == "__main__":
    loopback_only()
    asyncio.run(main())
