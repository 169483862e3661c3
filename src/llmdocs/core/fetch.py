"""Every fetch of an address a user supplied (a spec, a health check, a registered
service's tool, a webhook) goes through this client: it never connects to an address in
the blocked networks (`LLMDOCS_BLOCKED_NETWORKS`, link-local by default: where clouds
serve instance metadata and credentials to whoever asks)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import suppress
from ipaddress import IPv4Network, IPv6Network, ip_address

import httpcore
import httpx

from llmdocs.core import tracing
from llmdocs.core.tls import ReloadingContext

Network = IPv4Network | IPv6Network


class BlockedAddress(httpx.ConnectError):
    """The host is in a network user-supplied addresses are never fetched from."""


Lookup = Callable[[str, int], Awaitable[Sequence[str]]]
"""Where a host name points: its addresses, in the order to try them."""


async def _getaddrinfo(host: str, port: int) -> list[str]:
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


async def check_host(host: str, port: int, networks: Sequence[Network],
                     lookup: Lookup = _getaddrinfo) -> Sequence[str]:
    """The host's addresses, none of them blocked (an IPv4-mapped IPv6 address counts as
    its IPv4 one): `BlockedAddress` if one is, `httpx.ConnectError` if it has none.
    Also what refuses a user-supplied address before it is kept (a webhook's)."""
    addresses = await _addresses(host, port, lookup)
    for address in addresses:
        parsed = ip_address(address.split("%")[0])
        plain = getattr(parsed, "ipv4_mapped", None) or parsed
        for network in networks:
            if plain in network:
                raise BlockedAddress(f"{host} is at {parsed}, in the blocked network "
                                     f"{network} (LLMDOCS_BLOCKED_NETWORKS)")
    return addresses


async def _addresses(host: str, port: int, lookup: Lookup) -> Sequence[str]:
    with suppress(ValueError):
        ip_address(host)
        return [host]  # a literal address, as it is
    try:
        addresses = await lookup(host, port)  # a name: where it points now, once
    except OSError as exc:
        raise httpx.ConnectError(f"{host} cannot be resolved: {exc}") from exc
    if not addresses:
        raise httpx.ConnectError(f"{host} has no address")
    return addresses


def guarded_client(networks: Sequence[Network], *,
                   timeout: float | httpx.Timeout | None = 5.0,
                   follow_redirects: bool = False,
                   lookup: Lookup = _getaddrinfo,
                   verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """An HTTP client that connects, for every request and each redirect, only to an
    address outside `networks`, the very address it checked (no DNS rebinding); no
    proxy, transport or mount can be passed around the check (docs/internals.md).
    `verify`: a context of llmdocs.core.tls, for a client that also calls our services
    under mutual TLS."""
    return httpx.AsyncClient(transport=GuardedTransport(networks, lookup, verify),
                             timeout=timeout, follow_redirects=follow_redirects)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport with the check under its connection pool, so httpx keeps
    its request, response and error handling (docs/internals.md)."""

    def __init__(self, networks: Sequence[Network], lookup: Lookup = _getaddrinfo,
                 verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify)
        self._reloading = verify if isinstance(verify, ReloadingContext) else None
        # the pool hands this to each connection it opens; read before it is replaced,
        # so were it renamed in httpcore this fails loudly instead of connecting unchecked
        self._pool._network_backend = _CheckedBackend(self._pool._network_backend,
                                                      list(networks), lookup)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if self._reloading is not None:  # rotated files: the next connection presents them
            self._reloading.refresh()
        with tracing.http_span(request.method, str(url.copy_with(query=None, fragment=None)),
                               url.host, url.port) as span:
            response = await super().handle_async_request(request)
            tracing.answered(span, response.status_code)
            return response


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves a host once, refuses it if any of its addresses is blocked, and connects
    to those addresses, in order, like the default backend. TLS still verifies the
    certificate against the name: httpcore passes the URL's host as `server_hostname`
    to `start_tls`, not the address connected to."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, networks: Sequence[Network],
                 lookup: Lookup) -> None:
        self._inner = inner
        self._networks = networks
        self._lookup = lookup

    async def connect_tcp(
        self, host: str, port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if not self._networks:
            return await self._inner.connect_tcp(host, port, timeout, local_address,
                                                 socket_options)
        addresses = await self._checked_addresses(host, port)
        deadline = None if timeout is None else time.monotonic() + timeout
        for address in addresses:  # the next one only if this one failed
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                return await self._inner.connect_tcp(address, port, left, local_address,
                                                     socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def _checked_addresses(self, host: str, port: int) -> Sequence[str]:
        """The host's addresses, none of them blocked (an IPv4-mapped IPv6 address
        counts as its IPv4 one). `BlockedAddress` is an httpx error that httpx lets
        through from its pool as it is, so the caller sees it by type and message."""
        try:
            return await check_host(host, port, self._networks, self._lookup)
        except httpx.ConnectError as exc:
            if isinstance(exc, BlockedAddress):
                raise
            raise httpcore.ConnectError(str(exc)) from exc

    async def connect_unix_socket(
        self, path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
