"""The one small interface every provider implements, and the shared HTTP plumbing."""

from __future__ import annotations

import abc
import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import aiohttp
import orjson

from llmdocs.services.gateway.settings import ProviderConfig

T = TypeVar("T")


@dataclass(frozen=True)
class ChatRequest:
    """A chat call in provider-neutral form; `model` is the provider's own name."""

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    json_schema: dict[str, Any] | None = None  # constrain output to this schema
    json_mode: bool = False  # any JSON object


@dataclass
class ChatResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"
    queued_ms: float = 0.0  # of the call's time, spent waiting for the provider's slot


@dataclass
class Delta:
    """A piece of a streamed answer; the last one carries usage and finish reason."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    queued_ms: float = 0.0  # on the last piece: as ChatResult.queued_ms


@dataclass
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int


def pooled(vector: list[Any]) -> list[float]:
    """One vector per input: servers whose model has no pooling (llama.cpp's, for
    SmolLM2) answer a vector per token, which is averaged here."""
    if vector and isinstance(vector[0], list):
        return [sum(column) / len(vector) for column in zip(*vector, strict=True)]
    return [float(x) for x in vector]


CALLERS_FAULT = frozenset({400, 413, 422})  # an upstream's refusals the caller can mend


class ProviderError(Exception):
    """A provider failed: `status` is what the gateway answers (502, 504 on timeout, or
    the upstream's refusal of the request itself, see `CALLERS_FAULT`);
    `retryable` says whether another attempt or provider may succeed; `field` names the
    part of the request a provider refused as the caller's fault."""

    def __init__(self, provider: str, detail: str, *, status: int = 502,
                 retryable: bool = True, field: str | None = None) -> None:
        super().__init__(f"{provider}: {detail}")
        self.provider = provider
        self.detail = detail[:500]
        self.status = status
        self.retryable = retryable
        self.field = field


class Unsupported(ProviderError):
    def __init__(self, provider: str, what: str) -> None:
        super().__init__(provider, f"does not support {what}", status=400, retryable=False)


def text_of(content: Any) -> str:
    """Message content as plain text (OpenAI allows a list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def estimate_tokens(text: str) -> int:
    """An upper-leaning guess (about 3 characters a token) for providers that do not
    count, and for budget reservations before the call."""
    return len(text) // 3 + 1


async def thread_stream(produce: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Drive a blocking iterator in a worker thread and yield its items here. Closing
    the async iterator early stops the thread at its next item."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
    stop = threading.Event()

    def run() -> None:
        try:
            for item in produce():
                if stop.is_set():
                    return
                loop.call_soon_threadsafe(queue.put_nowait, (0, item))
            loop.call_soon_threadsafe(queue.put_nowait, (1, None))
        except Exception as exc:  # handed to the consumer, which raises it
            loop.call_soon_threadsafe(queue.put_nowait, (2, exc))

    worker = asyncio.create_task(asyncio.to_thread(run))
    try:
        while True:
            kind, item = await queue.get()
            if kind == 1:
                return
            if kind == 2:
                raise item
            yield item
    finally:
        stop.set()
        await asyncio.shield(worker)


@dataclass
class Provider(abc.ABC):
    config: ProviderConfig
    timeout: float
    kind: ClassVar[str] = ""

    @property
    def name(self) -> str:
        return self.config.name

    @abc.abstractmethod
    async def chat(self, request: ChatRequest) -> ChatResult: ...

    @abc.abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[Delta]: ...

    async def embed(self, model: str, inputs: list[str]) -> Embeddings:
        raise Unsupported(self.name, "embeddings")

    def output_limit(self, alias: str) -> int | None:
        """The most tokens the model behind `alias` writes in one answer, if known."""
        return self.config.max_output_tokens.get(alias)

    @abc.abstractmethod
    async def ping(self) -> None:
        """A real, cheap call that raises when the provider cannot serve."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Load or connect; the default needs nothing."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default holds none."""


@dataclass
class HttpProvider(Provider):
    """A provider reached over HTTP: one keep-alive session, errors mapped to
    ProviderError. aiohttp rather than httpx: a call to a local upstream costs about
    0.2 ms instead of 0.8 ms, which is most of the gateway's own overhead."""

    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)

    @property
    def http(self) -> aiohttp.ClientSession:
        """Made on first use, inside the event loop that will use it."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                base_url=self.config.base_url.rstrip("/") + "/",
                headers={"content-type": "application/json", **self.auth_headers()},
                # like httpx's: each connect and each read may take `timeout`; a long
                # generation or stream is not cut off as a whole
                timeout=aiohttp.ClientTimeout(total=None, connect=min(self.timeout, 5.0),
                                              sock_read=self.timeout),
                connector=aiohttp.TCPConnector(limit=200, keepalive_timeout=30),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def auth_headers(self) -> dict[str, str]:
        return {}

    def secret(self) -> str:
        key = self.config.api_key
        return key.get_secret_value() if key is not None else ""

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _failure(self, exc: Exception) -> ProviderError:
        if isinstance(exc, TimeoutError):
            return ProviderError(self.name, "timed out", status=504)
        return ProviderError(self.name, f"unreachable: {type(exc).__name__}")

    async def _check(self, response: aiohttp.ClientResponse) -> None:
        if response.status < 400:
            return
        detail = (await response.text(errors="replace"))[:300]
        retryable = response.status >= 500 or response.status == 429
        # the request refused as such (a context too long, a value the API does not
        # take) is the caller's to mend, as LiteLLM and the OpenAI SDK answer it; a
        # refused key or an unknown model (401, 403, 404) is the operator's: a 502
        status = response.status if response.status in CALLERS_FAULT else 502
        raise ProviderError(self.name, f"answered {response.status} {detail}".strip(),
                            status=status, retryable=retryable)

    async def _json(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        try:
            async with self.http.request(
                method, path.lstrip("/"), data=None if body is None else orjson.dumps(body)
            ) as response:
                await self._check(response)
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._failure(exc) from exc
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ProviderError(self.name, "answered with invalid JSON") from exc

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        return await self._json("POST", path, body)

    async def get_json(self, path: str) -> Any:
        return await self._json("GET", path, None)

    async def lines(self, path: str, body: dict[str, Any]) -> AsyncIterator[str]:
        """POST and yield the answer's lines as they arrive (SSE or NDJSON)."""
        try:
            async with self.http.post(path.lstrip("/"), data=orjson.dumps(body)) as response:
                await self._check(response)
                async for raw in response.content:
                    line = raw.decode().rstrip("\r\n")
                    if line:
                        yield line
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._failure(exc) from exc
        except aiohttp.http_exceptions.LineTooLong as exc:  # one event over aiohttp's bound
            raise ProviderError(self.name, "streamed a line too long to read") from exc
        except UnicodeDecodeError as exc:  # refused, as the OpenAI SDK's strict decode does
            raise ProviderError(self.name, "streamed bytes that are not UTF-8") from exc

    async def sse(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The JSON payloads of a server-sent event stream, up to `[DONE]`."""
        async for line in self.lines(path, body):
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                yield orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise ProviderError(self.name, "sent an invalid stream event") from exc
