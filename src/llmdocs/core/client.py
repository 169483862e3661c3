"""The base every service's `client.py` extends: one way to call a service (token,
correlation, retries of idempotent calls, typed errors), over HTTP or in-process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Self

import httpx
import structlog
from cachetools import LRUCache
from starlette.types import ASGIApp
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from llmdocs.core import tracing
from llmdocs.core.auth import Principal, delegated_token, service_token
from llmdocs.core.config import Settings
from llmdocs.core.fetch import BlockedAddress
from llmdocs.core.ids import new_id
from llmdocs.core.middleware import CORRELATION_HEADER, correlation_id_var
from llmdocs.core.tls import ReloadingContext, client_context

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})

# apps served by this process, by service key: embedded mode calls them in-process
local_apps: dict[str, ASGIApp] = {}
log = structlog.get_logger(__name__)
_CLIENT = ("127.0.0.1", 0)  # the peer an in-process call comes from


class InProcessTransport(httpx.AsyncBaseTransport):
    """Calls an ASGI app of this process without a socket (same middleware, auth, errors),
    leaner than `httpx.ASGITransport`: one body message, ASGI 2.4, no task group."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        body = await request.aread()
        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1", "method": request.method, "scheme": url.scheme,
            "path": url.path, "raw_path": url.raw_path.split(b"?", 1)[0],
            "query_string": url.query, "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": (url.host, url.port), "client": _CLIENT,
        }
        asked = False
        done = asyncio.Event()
        start: dict[str, Any] = {}
        parts: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()  # the app listens for a disconnect: it comes at the end
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        try:
            await self.app(scope, receive, send)
        except Exception:
            if not start:  # as a server answers when the app failed before answering
                log.exception("in-process call failed", path=url.path)
                return httpx.Response(500, text="Internal Server Error", request=request)
            # the app answered (its 500 problem document) and re-raised for the server
        finally:
            done.set()
        return httpx.Response(start["status"], headers=start.get("headers", []),
                              content=b"".join(parts), request=request)


class ServiceError(Exception):
    """A call to another service failed; `problem` is its problem+json body."""

    status: int = 0

    def __init__(self, service: str, status: int, problem: dict[str, Any],
                 retry_after: str | None = None) -> None:
        self.service = service
        self.status = status
        self.problem = problem
        self.retry_after = retry_after  # a limit's wait, for a caller that passes it on
        detail = problem.get("detail") or problem.get("title") or "request failed"
        super().__init__(f"{service}: {status} {detail}")

    @property
    def outage(self) -> int | None:
        """504 when the service timed out, 503 when it is down, failing (5xx) or over
        a limit: a retry may succeed; None when it refused the request itself."""
        if self.status == 504:
            return 504
        return 503 if self.status >= 500 or isinstance(self, RateLimited) else None


class BadRequest(ServiceError): ...
class Unauthorized(ServiceError): ...
class Forbidden(ServiceError): ...
class NotFound(ServiceError): ...
class Conflict(ServiceError): ...
class PreconditionFailed(ServiceError): ...
class Unprocessable(ServiceError): ...
class RateLimited(ServiceError): ...
class UpstreamError(ServiceError): ...


class ServiceUnavailable(ServiceError):
    """The service could not be reached at all."""


class NotConnected(ServiceUnavailable):
    """No replica took the connection: unlike a lost answer, nothing was sent."""


class AddressBlocked(ServiceError):
    """The service's address is in a blocked network: nothing was sent (see
    llmdocs.core.fetch)."""


_BY_STATUS: dict[int, type[ServiceError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    412: PreconditionFailed, 422: Unprocessable, 429: RateLimited,
}


def error_for(service: str, response: httpx.Response) -> ServiceError:
    try:
        body = response.json()
        problem = body if isinstance(body, dict) else {"detail": str(body)}
    except ValueError:
        problem = {"detail": response.text[:500]}
    status = response.status_code
    cls = _BY_STATUS.get(status, UpstreamError if status >= 500 else ServiceError)
    return cls(service, status, problem, response.headers.get("retry-after"))


# the on-behalf-of token calls to our own services carry instead of the service's own,
# inside `acting_for` (task-local, so concurrent requests never see each other's)
_delegated: ContextVar[str | None] = ContextVar("delegated_token", default=None)


@contextmanager
def acting_for(settings: Settings, actor: str, caller: Principal) -> Iterator[None]:
    """Calls to our own services made inside carry an on-behalf-of token for `caller`
    instead of `actor`'s service token, so each service judges the caller's own rights.
    A service calling as itself keeps its own rights; third parties get neither."""
    if caller.is_service:
        yield
        return
    reset = _delegated.set(delegated_token(settings, actor, caller))
    try:
        yield
    finally:
        _delegated.reset(reset)


class TokenSource:
    """A service's own token, re-issued shortly before it expires; inside `acting_for`,
    the caller's on-behalf-of token instead."""

    def __init__(self, settings: Settings, caller: str) -> None:
        self.settings = settings
        self.caller = caller
        # bandit B105: no token yet, not a password
        self._token = ""  # nosec B105
        self._renew_at = 0.0

    def __call__(self) -> str:
        delegated = _delegated.get()
        if delegated is not None:
            return delegated
        now = time.monotonic()
        if now >= self._renew_at:
            self._token = service_token(self.settings, self.caller)
            self._renew_at = now + self.settings.service_token_ttl_seconds * 0.8
        return self._token


class Replicas:
    """The base URLs of one service's replicas, taken in turn; one that could not be
    reached is left out for `EJECT_SECONDS`, unless every one is."""

    EJECT_SECONDS = 10.0

    def __init__(self, urls: list[str]) -> None:
        self.urls = [httpx.URL(url) for url in urls]
        self._turn = 0
        self._ejected_until: dict[httpx.URL, float] = {}

    def pick(self, avoid: frozenset[httpx.URL] = frozenset()) -> httpx.URL:
        """The next replica in turn that is not ejected nor in `avoid`, else the next
        one not in `avoid`, else the next one."""
        now = time.monotonic()
        order = [self.urls[(self._turn + i) % len(self.urls)] for i in range(len(self.urls))]
        self._turn += 1
        fresh = [url for url in order if url not in avoid]
        live = [url for url in fresh if self._ejected_until.get(url, 0.0) <= now]
        return (live or fresh or order)[0]

    def eject(self, url: httpx.URL) -> None:
        if len(self.urls) > 1:
            self._ejected_until[url] = time.monotonic() + self.EJECT_SECONDS


# replicas by configured URL list, shared by the clients of a process: short-lived
# clients (a tool call, a CLI command) still learn which replica is down
_replicas: dict[tuple[str, ...], Replicas] = {}


def replicas_of(urls: tuple[str, ...]) -> Replicas:
    found = _replicas.get(urls)
    if found is None:
        found = _replicas[urls] = Replicas([url.rstrip("/") for url in urls])
    return found


def idempotency_header(key: str | None = None) -> dict[str, str]:
    """A creating call's Idempotency-Key header (`key`, or a new one of its own): a
    retry of the call gets the first answer, never a second object."""
    return {"Idempotency-Key": key or new_id()}


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, ServiceUnavailable):
        return True
    return isinstance(exc, UpstreamError) and exc.status in RETRY_STATUSES


class ServiceClient:
    """Subclasses set `service` (the target's key) and add typed methods."""

    service: str = ""  # the target service key; subclasses set it

    def __init__(
        self,
        base_url: str | Sequence[str],  # several: the replicas of one service
        *,
        service: str | None = None,
        token: str | Callable[[], str] | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        tls: ReloadingContext | None = None,  # mutual TLS: the certificate to present
    ) -> None:
        self.replicas = replicas_of((base_url,) if isinstance(base_url, str) else tuple(base_url))
        self.base_url = str(self.replicas.urls[0])
        self.service = service or type(self).service
        self._token = token
        self.retries = retries
        self._local = transport if isinstance(transport, InProcessTransport) else None
        self._tls = tls
        self.http = httpx.AsyncClient(
            verify=tls if tls is not None else True,
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            transport=transport,
        )
        # an absolute URL per path: merging a path with the base URL parses both, and a
        # client calls the same few paths again and again (ids make the rest; bounded)
        self._urls: LRUCache[str, httpx.URL] = LRUCache(maxsize=256)

    @classmethod
    def for_service(
        cls,
        settings: Settings,
        *,
        caller: str | None = None,
        token: str | None = None,
        target: str | None = None,
    ) -> Self:
        """A client to `target` (default `cls.service`) as configured: in-process when
        that app is served here, HTTP otherwise (balanced over its replicas' URLs);
        authenticated as `caller`'s service token or with `token`; with TLS on, presenting
        `caller`'s certificate (none: the CLI's)."""
        target = target or cls.service
        app = local_apps.get(target) if settings.inprocess_calls else None
        transport = InProcessTransport(app) if app is not None else None
        source: str | Callable[[], str] | None = token
        if source is None and caller is not None:
            source = TokenSource(settings, caller)
        return cls(settings.urls_for(target), service=target, token=source,
                   timeout=settings.http_timeout_seconds, retries=settings.http_retries,
                   transport=transport, tls=client_context(settings, caller))

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        token = self._token() if callable(self._token) else self._token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        correlation_id = correlation_id_var.get()
        if correlation_id:
            headers[CORRELATION_HEADER] = correlation_id
        tracing.inject(headers)
        if extra:
            headers.update(extra)
        return headers

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = self.http.build_request("GET", path).url
        return url

    async def _send_once(self, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        tried: frozenset[httpx.URL] = frozenset()
        while True:
            replica = self.replicas.pick(avoid=tried)
            try:
                response = await self._send_to(replica, method, path, kwargs)
                break
            except httpx.ConnectError as exc:  # nothing was sent: another replica may take it
                self.replicas.eject(replica)
                tried |= {replica}
                if len(tried) == len(self.replicas.urls):
                    raise self._unreachable(replica, exc, NotConnected) from exc
        if response.status_code >= 400:
            await response.aread()
            raise error_for(self.service, response)
        return response

    async def _send_traced(self, method: str, path: str, kwargs: dict[str, Any]
                           ) -> httpx.Response:
        """One attempt in a client span, under which the called service's spans go."""
        url = self._url(path)  # the span names the first replica
        with tracing.http_span(method, f"{self.base_url}{url.path}", url.host, url.port,
                               peer=self.service) as span:
            if span.is_recording():
                kwargs = {**kwargs, "headers": dict(kwargs["headers"])}
                tracing.inject(kwargs["headers"])
            try:
                response = await self._send_once(method, path, kwargs)
            except ServiceError as exc:
                tracing.answered(span, exc.status)
                raise
            tracing.answered(span, response.status_code)
            return response

    async def _send_to(self, replica: httpx.URL, method: str, path: str,
                       kwargs: dict[str, Any]) -> httpx.Response:
        """One request to one replica (replicas differ only in scheme, host and port);
        a connection refused passes up as it is."""
        url = self._url(path)
        if replica is not self.replicas.urls[0]:
            url = url.copy_with(scheme=replica.scheme, host=replica.host, port=replica.port)
        try:
            if self._local is not None:  # the app answers here: no pool, redirect or cookie
                request = self.http.build_request(method, url, **kwargs)
                return await self._local.handle_async_request(request)
            if self._tls is not None:  # rotated files: the next connection presents them
                self._tls.refresh()
            return await self.http.request(method, url, **kwargs)
        except BlockedAddress as exc:  # a ConnectError, but no replica's fault
            raise AddressBlocked(self.service, 422, {"detail": str(exc)}) from exc
        except httpx.ConnectError:
            raise
        except AttributeError as exc:
            if exc.name != "getpeername":
                raise
            # anyio: a peer that dies as the connection opens leaves a stream without a
            # socket, and httpcore asks it for its address before sending a byte
            raise httpx.ConnectError(f"connection lost as it opened: {exc}") from exc
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):  # a slow answer is no sign of a fault
                self.replicas.eject(replica)
            raise ServiceUnavailable(self.service, 504, {"detail": f"timed out: {exc}"}) from exc
        except httpx.TransportError as exc:
            self.replicas.eject(replica)
            raise self._unreachable(replica, exc) from exc

    def _unreachable(self, replica: httpx.URL, exc: Exception,
                     kind: type[ServiceUnavailable] = ServiceUnavailable
                     ) -> ServiceUnavailable:
        return kind(self.service, 503, {"detail": f"unreachable at {replica}: {exc}"})

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; raise a `ServiceError` subclass for any 4xx/5xx answer."""
        method = method.upper()
        kwargs["headers"] = self._headers(headers)
        if not (method in IDEMPOTENT if idempotent is None else idempotent):
            return await self._send_traced(method, path, kwargs)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.retries)),
            wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send_traced(method, path, kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        return (await self.request("GET", path, **kwargs)).json()

    async def post_json(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return (await self.request("POST", path, json=body, **kwargs)).json()

    async def create_json(self, path: str, body: Any = None, *,
                          headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        """A creating POST, retried: its own Idempotency-Key makes a retry get the
        first answer, never a second object."""
        keyed = {**(headers or {}), **idempotency_header()}
        return (await self.request("POST", path, json=body, headers=keyed, idempotent=True,
                                   **kwargs)).json()

    async def health(self, deep: bool = True) -> dict[str, Any]:
        """The service's health report; a shallow one skips its own called services."""
        response = await self.request(
            "GET", "/health", params=None if deep else {"deep": "false"}, idempotent=True
        )
        report: dict[str, Any] = response.json()
        return report

    async def info(self) -> dict[str, Any]:
        info: dict[str, Any] = await self.get_json("/info")
        return info

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
