"""The one small interface every provider implements, and the shared HTTP plumbing."""

from __future__ import annotations

import abc
import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import httpx

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


@dataclass
class Delta:
    """A piece of a streamed answer; the last one carries usage and finish reason."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int


class ProviderError(Exception):
    """A provider failed: `status` is what the gateway answers (502, or 504 on timeout);
    `retryable` says whether another attempt or provider may succeed."""

    def __init__(self, provider: str, detail: str, *, status: int = 502,
                 retryable: bool = True) -> None:
        super().__init__(f"{provider}: {detail}")
        self.provider = provider
        self.detail = detail[:500]
        self.status = status
        self.retryable = retryable


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

    @abc.abstractmethod
    async def ping(self) -> None:
        """A real, cheap call that raises when the provider cannot serve."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Load or connect; the default needs nothing."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default holds none."""


@dataclass
class HttpProvider(Provider):
    """A provider reached over HTTP: one pooled client, errors mapped to ProviderError."""

    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(
            base_url=self.config.base_url.rstrip("/"), headers=self.auth_headers(),
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=64),
        )

    def auth_headers(self) -> dict[str, str]:
        return {}

    def secret(self) -> str:
        key = self.config.api_key
        return key.get_secret_value() if key is not None else ""

    async def aclose(self) -> None:
        await self.http.aclose()

    def _failure(self, exc: Exception) -> ProviderError:
        if isinstance(exc, httpx.TimeoutException):
            return ProviderError(self.name, "timed out", status=504)
        return ProviderError(self.name, f"unreachable: {type(exc).__name__}")

    def _check(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        detail = response.text[:300] if not response.is_stream_consumed else ""
        retryable = response.status_code >= 500 or response.status_code == 429
        raise ProviderError(self.name, f"answered {response.status_code} {detail}".strip(),
                            retryable=retryable)

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        try:
            response = await self.http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise self._failure(exc) from exc
        self._check(response)
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(self.name, "answered with invalid JSON") from exc

    async def get_json(self, path: str) -> Any:
        try:
            response = await self.http.get(path)
        except httpx.HTTPError as exc:
            raise self._failure(exc) from exc
        self._check(response)
        return response.json()

    async def lines(self, path: str, body: dict[str, Any]) -> AsyncIterator[str]:
        """POST and yield the answer's lines as they arrive (SSE or NDJSON)."""
        try:
            async with self.http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    self._check(response)
                async for line in response.aiter_lines():
                    if line:
                        yield line
        except httpx.HTTPError as exc:
            raise self._failure(exc) from exc

    async def sse(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The JSON payloads of a server-sent event stream, up to `[DONE]`."""
        async for line in self.lines(path, body):
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                yield json.loads(data)
            except ValueError as exc:
                raise ProviderError(self.name, "sent an invalid stream event") from exc
