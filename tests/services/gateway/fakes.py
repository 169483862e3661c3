"""Local stand-ins for paid remote APIs, speaking their real wire formats: OpenAI chat
completions (JSON and SSE), Anthropic Messages (JSON and SSE), Ollama's native API
(JSON and NDJSON) and Bedrock Converse (JSON and AWS binary event-stream, with CRCs).
Each answers "echo: <last user message>" and remembers the bodies it received."""

from __future__ import annotations

import asyncio
import binascii
import json
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Upstream:
    """What a fake received, and how it should misbehave."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    fail_status: int | None = None
    delay: float = 0.0  # seconds to wait before answering, to make a provider time out

    async def take(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json() if await request.body() else {}
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        await asyncio.sleep(self.delay)
        return body


def last_user(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # Bedrock / Anthropic content blocks
                return "".join(str(part.get("text", "")) for part in content)
            return str(content)
    return ""


def answer_to(messages: list[dict[str, Any]]) -> tuple[str, int, int]:
    text = "echo: " + last_user(messages)
    prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
    return text, prompt, len(text.split())


def words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


def _failing(upstream: Upstream) -> Response | None:
    if upstream.fail_status is None:
        return None
    return JSONResponse({"error": {"message": "upstream broke"}}, upstream.fail_status)


def openai_app(upstream: Upstream) -> Starlette:
    async def chat(request: Request) -> Response:
        body = await upstream.take(request)
        if (failed := _failing(upstream)) is not None:
            return failed
        text, prompt, completion = answer_to(body["messages"])
        if not body.get("stream"):
            return JSONResponse({
                "id": "cmpl-1", "object": "chat.completion", "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion}})

        async def events() -> AsyncIterator[bytes]:
            for piece in words(text):
                chunk = {"id": "c", "object": "chat.completion.chunk", "model": body["model"],
                         "choices": [{"index": 0, "delta": {"content": piece},
                                      "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            end = {"id": "c", "object": "chat.completion.chunk", "model": body["model"],
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield f"data: {json.dumps(end)}\n\n".encode()
            usage = {"id": "c", "choices": [], "usage": {
                "prompt_tokens": prompt, "completion_tokens": completion}}
            yield f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def embeddings(request: Request) -> Response:
        body = await upstream.take(request)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return JSONResponse({"data": [{"index": i, "embedding": [float(len(t)), 1.0]}
                                      for i, t in enumerate(inputs)],
                             "usage": {"prompt_tokens": len(inputs)}})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/v1/models", models), Route("/v1/embeddings", embeddings,
                                                                methods=["POST"])])


def anthropic_app(upstream: Upstream) -> Starlette:
    async def messages(request: Request) -> Response:
        body = await upstream.take(request)
        if request.headers.get("x-api-key") != "sk-ant-test" or "anthropic-version" not in \
                request.headers:
            return JSONResponse({"type": "error", "error": {"type": "authentication_error",
                                                            "message": "bad key"}}, 401)
        text, prompt, completion = answer_to(body["messages"])
        if not body.get("stream"):
            return JSONResponse({
                "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "usage": {"input_tokens": prompt, "output_tokens": completion}})

        def event(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

        async def events() -> AsyncIterator[bytes]:
            yield event("message_start", {"message": {
                "id": "msg_1", "type": "message", "role": "assistant", "content": [],
                "model": body["model"], "usage": {"input_tokens": prompt, "output_tokens": 1}}})
            yield event("content_block_start", {"index": 0, "content_block": {
                "type": "text", "text": ""}})
            yield event("ping", {})
            for piece in words(text):
                yield event("content_block_delta", {"index": 0, "delta": {
                    "type": "text_delta", "text": piece}})
            yield event("content_block_stop", {"index": 0})
            yield event("message_delta", {"delta": {"stop_reason": "end_turn"},
                                          "usage": {"output_tokens": completion}})
            yield event("message_stop", {})

        return StreamingResponse(events(), media_type="text/event-stream")

    async def models(request: Request) -> Response:
        return JSONResponse({"data": [{"id": "claude-test", "type": "model"}]})

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"]),
                             Route("/v1/models", models)])


def ollama_app(upstream: Upstream) -> Starlette:
    async def chat(request: Request) -> Response:
        body = await upstream.take(request)
        text, prompt, completion = answer_to(body["messages"])
        done = {"model": body["model"], "done": True, "done_reason": "stop",
                "prompt_eval_count": prompt, "eval_count": completion}
        if body.get("stream") is False:
            return JSONResponse({**done, "message": {"role": "assistant", "content": text}})

        async def lines() -> AsyncIterator[bytes]:
            for piece in words(text):
                yield (json.dumps({"model": body["model"], "done": False, "message": {
                    "role": "assistant", "content": piece}}) + "\n").encode()
            yield (json.dumps({**done, "message": {"role": "assistant", "content": ""}})
                   + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    async def tags(request: Request) -> Response:
        return JSONResponse({"models": [{"name": "llama3"}]})

    async def embed(request: Request) -> Response:
        body = await upstream.take(request)
        return JSONResponse({"embeddings": [[float(len(t)), 2.0] for t in body["input"]],
                             "prompt_eval_count": len(body["input"])})

    return Starlette(routes=[Route("/api/chat", chat, methods=["POST"]),
                             Route("/api/tags", tags), Route("/api/embed", embed,
                                                             methods=["POST"])])


def event_stream_message(event_type: str, payload: dict[str, Any]) -> bytes:
    """One message of AWS's binary event-stream encoding: prelude (total length, header
    length, CRC32 of both), string headers, JSON payload, CRC32 of the whole message."""
    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", "application/json"),
                        (":message-type", "event")):
        raw_name, raw_value = name.encode(), value.encode()
        headers += (struct.pack("B", len(raw_name)) + raw_name + b"\x07"
                    + struct.pack(">H", len(raw_value)) + raw_value)
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + headers + body
    return message + struct.pack(">I", binascii.crc32(message))


def bedrock_app(upstream: Upstream) -> Starlette:
    def parse(request: Request) -> str:
        return unquote(request.path_params["model"])

    async def converse(request: Request) -> Response:
        body = await upstream.take(request)
        body["modelId"] = parse(request)
        if "AWS4-HMAC-SHA256" not in request.headers.get("authorization", ""):
            return JSONResponse({"message": "missing signature"}, 403)
        text, prompt, completion = answer_to(body["messages"])
        return JSONResponse({
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": prompt, "outputTokens": completion,
                      "totalTokens": prompt + completion},
            "metrics": {"latencyMs": 1}})

    async def converse_stream(request: Request) -> Response:
        body = await upstream.take(request)
        body["modelId"] = parse(request)
        text, prompt, completion = answer_to(body["messages"])

        async def frames() -> AsyncIterator[bytes]:
            yield event_stream_message("messageStart", {"role": "assistant"})
            for piece in words(text):
                yield event_stream_message("contentBlockDelta", {
                    "contentBlockIndex": 0, "delta": {"text": piece}})
            yield event_stream_message("contentBlockStop", {"contentBlockIndex": 0})
            yield event_stream_message("messageStop", {"stopReason": "end_turn"})
            yield event_stream_message("metadata", {
                "usage": {"inputTokens": prompt, "outputTokens": completion,
                          "totalTokens": prompt + completion}, "metrics": {"latencyMs": 1}})

        return StreamingResponse(frames(), media_type="application/vnd.amazon.eventstream")

    async def foundation_models(request: Request) -> Response:
        return JSONResponse({"modelSummaries": []})

    return Starlette(routes=[
        Route("/model/{model:path}/converse", converse, methods=["POST"]),
        Route("/model/{model:path}/converse-stream", converse_stream, methods=["POST"]),
        Route("/foundation-models", foundation_models),
    ])


FAKES: dict[str, Callable[[Upstream], Starlette]] = {
    "openai": openai_app, "anthropic": anthropic_app, "ollama": ollama_app,
    "bedrock": bedrock_app,
}


def garbling(app: ASGIApp, text: str) -> ASGIApp:
    """`app` as a broken upstream: `text` in what it sends (JSON or a streamed event)
    goes out as that many bytes that are not UTF-8 (the length unchanged)."""
    raw = text.encode()

    async def garbled(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.body":
                body = message.get("body", b"").replace(raw, b"\xff" * len(raw))
                message = {**message, "body": body}
            await send(message)

        await app(scope, receive, sending)

    return garbled
