"""`bedrock`: Amazon Bedrock's Converse API through boto3 (`converse`, `converse_stream`;
the stream is AWS's binary event-stream, which botocore decodes). boto3 is blocking, so
calls run in worker threads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)

from llmdocs.services.gateway.providers.base import (
    ChatRequest,
    ChatResult,
    Delta,
    Provider,
    ProviderError,
    text_of,
    thread_stream,
)

_TOOL = "respond"


@dataclass
class BedrockProvider(Provider):
    kind = "bedrock"
    _runtime: Any = field(init=False, default=None)
    _control: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        config = self.config
        secret = config.aws_secret_access_key
        session = boto3.session.Session(
            aws_access_key_id=(config.aws_access_key_id.get_secret_value()
                               if config.aws_access_key_id else None),
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            region_name=config.region,
        )
        settings = Config(connect_timeout=min(self.timeout, 5.0), read_timeout=self.timeout,
                          retries={"max_attempts": 1, "mode": "standard"})
        endpoint = config.base_url or None
        self._runtime = session.client("bedrock-runtime", endpoint_url=endpoint, config=settings)
        self._control = session.client("bedrock", endpoint_url=endpoint, config=settings)

    def _args(self, request: ChatRequest) -> dict[str, Any]:
        inference: dict[str, Any] = {"maxTokens": request.max_tokens}
        if request.temperature is not None:
            inference["temperature"] = request.temperature
        if request.top_p is not None:
            inference["topP"] = request.top_p
        if request.stop:
            inference["stopSequences"] = request.stop
        args: dict[str, Any] = {
            "modelId": request.model, "inferenceConfig": inference,
            "messages": [{"role": m["role"], "content": [{"text": text_of(m.get("content"))}]}
                         for m in request.messages if m.get("role") != "system"],
        }
        system = [{"text": text_of(m.get("content"))} for m in request.messages
                  if m.get("role") == "system"]
        if system:
            args["system"] = system
        schema = request.json_schema or ({"type": "object"} if request.json_mode else None)
        if schema is not None:
            args["toolConfig"] = {
                "tools": [{"toolSpec": {"name": _TOOL, "description": "Give the answer.",
                                        "inputSchema": {"json": schema}}}],
                "toolChoice": {"tool": {"name": _TOOL}},
            }
        return args

    def _error(self, exc: Exception) -> ProviderError:
        if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
            return ProviderError(self.name, "timed out", status=504)
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "error")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
            return ProviderError(self.name, f"answered {status} {code}",
                                 retryable=status >= 500 or status == 429)
        return ProviderError(self.name, f"unreachable: {type(exc).__name__}")

    async def chat(self, request: ChatRequest) -> ChatResult:
        try:
            out = await asyncio.to_thread(self._runtime.converse, **self._args(request))
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc) from exc
        try:
            parts = [block["text"] if "text" in block else json.dumps(block["toolUse"]["input"])
                     for block in out["output"]["message"]["content"]]
            usage = out.get("usage") or {}
            return ChatResult("".join(parts), int(usage.get("inputTokens", 0)),
                              int(usage.get("outputTokens", 0)), _finish(out.get("stopReason")))
        except (KeyError, TypeError) as exc:
            raise ProviderError(self.name, "answered without a message") from exc

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        def produce() -> Iterator[Delta]:
            out = self._runtime.converse_stream(**self._args(request))
            prompt, completion, finish = 0, 0, "stop"
            for event in out["stream"]:
                if "contentBlockDelta" in event:
                    delta = event["contentBlockDelta"]["delta"]
                    text = delta.get("text") or (delta.get("toolUse") or {}).get("input")
                    if text:
                        yield Delta(text)
                elif "messageStop" in event:
                    finish = _finish(event["messageStop"].get("stopReason"))
                elif "metadata" in event:
                    usage = event["metadata"].get("usage") or {}
                    prompt = int(usage.get("inputTokens", 0))
                    completion = int(usage.get("outputTokens", 0))
            yield Delta("", finish, prompt, completion)

        try:
            async for delta in thread_stream(produce):
                yield delta
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc) from exc

    async def ping(self) -> None:
        try:
            await asyncio.to_thread(self._control.list_foundation_models)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc) from exc


def _finish(reason: Any) -> str:
    return "length" if reason == "max_tokens" else "stop"
