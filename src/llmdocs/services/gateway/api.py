"""HTTP routes of the llm-gateway. Routes parse, call service.py and shape the answer."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError

from llmdocs.core.auth import Principal, require
from llmdocs.core.bodies import json_body
from llmdocs.core.db import StorableText
from llmdocs.core.errors import PROBLEM_BASE, Problem, invalid_request
from llmdocs.core.ids import new_id
from llmdocs.core.middleware import correlation_id_var
from llmdocs.services.gateway.accounting import (
    BudgetExceeded,
    BudgetsUnavailable,
    RateLimitExceeded,
)
from llmdocs.services.gateway.providers.base import ProviderError
from llmdocs.services.gateway.routing import RoutingError
from llmdocs.services.gateway.schemas import (
    BudgetIn,
    ChatCompletionRequest,
    EmbeddingRequest,
    GatewayOptions,
    LimitIn,
    QueryRequest,
    QueryResponse,
)
from llmdocs.services.gateway.service import (
    Call,
    GatewayService,
    InvalidRequest,
    Outcome,
    Prepared,
)

router = APIRouter(tags=["llm-gateway"])
M = TypeVar("M", bound=BaseModel)
Scope = Literal["user", "key"]
# whom a budget or a limit is for, as stored (a NUL or a longer one was a database error)
Subject = Annotated[StorableText, Path(min_length=1, max_length=200)]
OVERHEAD = "X-Gateway-Overhead-Ms"
read, write, admin = require("llm:read"), require("llm:write"), require("llm:admin")


def _service(request: Request) -> GatewayService:
    service: GatewayService = request.app.state.gateway
    return service


@contextmanager
def _problems(messages: str = "messages") -> Iterator[None]:
    """The service's refusals and provider failures as problem documents; a refusal of
    the messages names them as the caller sent them (`messages`: /query sends a prompt)."""
    def sent(field: str) -> str:
        return messages if field == "messages" else field

    try:
        yield
    except InvalidRequest as exc:
        raise Problem(422, exc.detail,
                      errors=[{"field": sent(exc.field), "message": exc.detail}]) from None
    except RoutingError as exc:
        raise Problem(exc.status, exc.detail,
                      type=PROBLEM_BASE + exc.kind if exc.kind else None,
                      errors=[{"field": sent(exc.field), "message": exc.detail}]
                      if exc.field else None) from None
    except BudgetExceeded as exc:
        raise Problem(402, str(exc), type=PROBLEM_BASE + "budget-exceeded") from None
    except BudgetsUnavailable:
        raise Problem(503, "The budget counters cannot be reached; budgeted calls are "
                      "refused until they can.", headers={"Retry-After": "5"}) from None
    except RateLimitExceeded as exc:
        raise Problem(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    except ProviderError as exc:
        if exc.field is None:
            raise Problem(exc.status, f"Provider {exc.provider!r} failed: {exc.detail}",
                          type=PROBLEM_BASE + "provider-error") from None
        detail = f"Provider {exc.provider!r} refused the {sent(exc.field)}: {exc.detail}"
        raise Problem(exc.status, detail, type=PROBLEM_BASE + "provider-error",
                      errors=[{"field": sent(exc.field), "message": detail}]) from None


def _who(principal: Principal, claimed: str | None) -> tuple[str, str]:
    """(user, key): services and admins may act for a user they name; others are who
    their token says. The key is the token's id."""
    return principal.user(claimed, "llm:admin"), str(principal.claims.get("jti", ""))


def _max_tokens(request: Request, asked: int | None, field: str = "max_tokens") -> int:
    """The call's max_tokens; `field` is the name the caller gave it."""
    settings = _service(request).settings
    if asked is not None and asked > settings.max_tokens_limit:
        detail = f"{field} may be at most {settings.max_tokens_limit}."
        raise Problem(422, detail, errors=[{"field": field, "message": detail}])
    return asked or settings.default_max_tokens


def _asked_tokens(body: ChatCompletionRequest) -> tuple[int | None, str]:
    """max_completion_tokens, OpenAI's newer name, wins over max_tokens."""
    if body.max_completion_tokens is not None:
        return body.max_completion_tokens, "max_completion_tokens"
    return body.max_tokens, "max_tokens"


def _cache_flags(request: Request) -> tuple[bool, bool]:
    directives = request.headers.get("cache-control", "").lower()
    return "no-cache" not in directives, "no-store" not in directives


def _call(request: Request, options: GatewayOptions, principal: Principal,
          claimed_user: str | None, **fields: Any) -> Call:
    user, key = _who(principal, claimed_user)
    read_cache, write_cache = _cache_flags(request)
    return Call(provider=options.provider, cost=options.cost_preference,
                performance=options.performance_requirement, policy=options.policy,
                cache_ttl=options.cache_ttl, user_id=user, key_id=key,
                read_cache=read_cache, write_cache=write_cache, **fields)


def _started(request: Request) -> float:
    """When the request entered the service (the kernel middleware notes it), so the
    overhead header counts middleware and body parsing too."""
    started: float = getattr(request.state, "request_started", time.perf_counter())
    return started


def _headers(started: float, outcome: Outcome | None) -> dict[str, str]:
    elapsed = (time.perf_counter() - started) * 1000
    upstream = outcome.upstream_ms if outcome else 0.0
    headers = {OVERHEAD: f"{max(0.0, elapsed - upstream):.3f}"}
    if outcome is not None:
        headers["X-Gateway-Provider"] = outcome.provider
        headers["X-Gateway-Cache"] = "hit" if outcome.cached else "miss"
    return headers


def _json(body: Any, headers: dict[str, str]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


def _response_format(body: ChatCompletionRequest) -> tuple[dict[str, Any] | None, bool]:
    fmt = body.response_format
    if fmt is None or fmt.get("type") == "text":
        return None, False
    if fmt.get("type") == "json_object":
        schema = fmt.get("schema")
        return (schema if isinstance(schema, dict) else None), True
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
            return spec["schema"], True
    detail = ("response_format must be {type: text}, {type: json_object} or "
              "{type: json_schema, json_schema: {name, schema}}.")
    raise Problem(422, detail, errors=[{"field": "response_format", "message": detail}])


def _gateway_fields(outcome: Outcome) -> dict[str, Any]:
    return {"provider": outcome.provider, "cost": outcome.cost, "cached": outcome.cached,
            "routing": {"reason": outcome.reason, "sensitive": outcome.sensitive,
                        "findings": outcome.findings}}


def _completion(outcome: Outcome) -> dict[str, Any]:
    return {
        "id": outcome.id, "object": "chat.completion", "created": outcome.created,
        "model": outcome.model,
        "choices": [{"index": 0, "finish_reason": outcome.finish_reason,
                     "message": {"role": "assistant", "content": outcome.text}}],
        "usage": _usage(outcome), "gateway": _gateway_fields(outcome),
    }


def _usage(outcome: Outcome) -> dict[str, int]:
    return {"prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens,
            "total_tokens": outcome.prompt_tokens + outcome.completion_tokens}


async def _first(stream: AsyncGenerator[str | Outcome, None]) -> str | Outcome:
    """The first item, pulled before the response starts, so that a provider failing
    at once is still a proper problem document."""
    with _problems():
        return await anext(stream)


def _sse(data: Any) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


async def _body(request: Request, model: type[M]) -> M:
    """The body parsed and validated in one pass by pydantic-core, on the hot path
    instead of FastAPI's parse-then-validate; errors are FastAPI's usual 422."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise invalid_request(exc) from None


@router.post("/v1/chat/completions", summary="OpenAI-compatible chat completion",
             openapi_extra=json_body(ChatCompletionRequest))
async def chat_completions(request: Request,
                           principal: Principal = Depends(write)) -> Response:
    started = _started(request)
    body = await _body(request, ChatCompletionRequest)
    service = _service(request)
    schema, json_mode = _response_format(body)
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    asked, tokens_field = _asked_tokens(body)
    call = _call(request, body, principal, body.user,
                 messages=[m.model_dump(exclude_none=True) for m in body.messages],
                 model=body.model,
                 max_tokens=_max_tokens(request, asked, tokens_field),
                 max_tokens_field=tokens_field,
                 temperature=body.temperature, top_p=body.top_p, stop=stop,
                 json_schema=schema, json_mode=json_mode, metadata=body.metadata or {})
    with _problems():
        prepared = await service.prepare(call)
        if not body.stream:
            outcome = await service.run(prepared)
            return _json(_completion(outcome), _headers(started, outcome))
    return await _stream_response(service, prepared, body, started)


async def _stream_response(service: GatewayService, prepared: Prepared,
                           body: ChatCompletionRequest, started: float) -> Response:
    stream = service.stream(prepared)
    first = await _first(stream)
    id_, created = "chatcmpl-" + new_id(), int(time.time())
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse({"id": id_, "object": "chat.completion.chunk", "created": created,
                     "model": prepared.plan.alias,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    async def events() -> AsyncIterator[bytes]:
        yield chunk({"role": "assistant", "content": ""})
        item = first
        try:
            while True:
                if isinstance(item, Outcome):
                    last = {"id": id_, "object": "chat.completion.chunk", "created": created,
                            "model": prepared.plan.alias, "gateway": _gateway_fields(item),
                            "choices": [{"index": 0, "delta": {},
                                         "finish_reason": item.finish_reason}]}
                    yield _sse(last)
                    if include_usage:
                        yield _sse({"id": id_, "object": "chat.completion.chunk",
                                    "created": created, "model": prepared.plan.alias,
                                    "choices": [], "usage": _usage(item)})
                    break
                yield chunk({"content": item})
                item = await anext(stream)
        except ProviderError as exc:  # mid-stream: the status is sent, tell it in-band
            yield _sse({"error": {"message": f"Provider {exc.provider!r} failed: "
                                  f"{exc.detail}", "type": "provider_error"}})
        finally:
            await stream.aclose()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={**_headers(started, None), "Cache-Control": "no-cache"})


@router.post("/query", response_model=QueryResponse, summary="Ask a model, routed by policy",
             openapi_extra=json_body(QueryRequest))
async def query(request: Request, principal: Principal = Depends(write)) -> Response:
    started = _started(request)
    body = await _body(request, QueryRequest)
    messages = [{"role": "system", "content": body.system}] if body.system else []
    messages.append({"role": "user", "content": body.prompt})
    call = _call(request, body, principal, body.user_id, messages=messages,
                 model=body.model, max_tokens=_max_tokens(request, body.max_tokens),
                 temperature=body.temperature, json_schema=body.json_schema,
                 json_mode=body.json_schema is not None, metadata=body.metadata or {})
    service = _service(request)
    with _problems(messages="prompt"):
        outcome = await service.run(await service.prepare(call))
    answer = {
        "response": outcome.text, "provider": outcome.provider, "model": outcome.model,
        "tokens": {"prompt": outcome.prompt_tokens, "completion": outcome.completion_tokens},
        "cost": outcome.cost, "cached": outcome.cached,
        "processing_time": round(time.perf_counter() - started, 6),
        "provider_time": round(outcome.upstream_ms / 1000, 6),
        "queue_time": round(outcome.queue_ms / 1000, 6),
        "correlation_id": correlation_id_var.get(),
        "routing": {"reason": outcome.reason, "sensitive": outcome.sensitive,
                    "findings": outcome.findings},
    }
    return _json(answer, _headers(started, outcome))


@router.post("/v1/embeddings", summary="OpenAI-compatible embeddings")
async def embeddings(request: Request, body: EmbeddingRequest,
                     principal: Principal = Depends(write)) -> Response:
    started = _started(request)
    user, key = _who(principal, body.user)
    inputs = [body.input] if isinstance(body.input, str) else body.input
    with _problems():
        result, outcome = await _service(request).embed(body.model, inputs, user, key)
    data = [{"object": "embedding", "index": i, "embedding": vector}
            for i, vector in enumerate(result.vectors)]
    return _json({"object": "list", "model": outcome.model, "data": data,
                  "usage": {"prompt_tokens": result.prompt_tokens,
                            "total_tokens": result.prompt_tokens}},
                 _headers(started, outcome))


@router.get("/v1/models", dependencies=[Depends(read)], summary="Model aliases")
async def models(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": _service(request).models()}


@router.get("/providers", dependencies=[Depends(read)],
            summary="Configured providers, their health and the price table")
async def providers(request: Request, probe: bool = Query(False)) -> dict[str, Any]:
    service = _service(request)
    return {"providers": await service.providers(probe), "prices": service.prices.table(),
            "default_model": service.settings.default_model}


@router.get("/usage", summary="Spend and tokens by user, key, model and day")
async def usage(request: Request, user_id: StorableText | None = Query(None, max_length=200),
                since: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$"),
                principal: Principal = Depends(read)) -> dict[str, Any]:
    if not principal.allows("llm:admin"):
        user_id = principal.subject
    return await _service(request).usage(user_id, since)


@router.get("/budgets", dependencies=[Depends(admin)], summary="Budgets and their spend")
async def list_budgets(request: Request) -> list[dict[str, Any]]:
    with _problems():
        return await _service(request).budgets.list()


@router.put("/budgets/{scope}/{subject}", dependencies=[Depends(admin)],
            summary="Set a budget (USD) for a user or key")
async def put_budget(request: Request, scope: Scope, subject: Subject, body: BudgetIn) -> dict[
        str, Any]:
    with _problems():
        await _service(request).budgets.put(scope, subject, body.limit_usd, body.period,
                                            body.reset)
    return {"scope": scope, "subject": subject, "limit_usd": body.limit_usd,
            "period": body.period}


@router.delete("/budgets/{scope}/{subject}", dependencies=[Depends(admin)], status_code=204)
async def delete_budget(request: Request, scope: Scope, subject: Subject) -> Response:
    if not await _service(request).budgets.remove(scope, subject):
        raise Problem(404, f"No budget for {scope} {subject!r}.")
    return Response(status_code=204)


@router.get("/limits", dependencies=[Depends(admin)], summary="Rate limits")
async def list_limits(request: Request) -> list[dict[str, Any]]:
    return await _service(request).limiter.list()


@router.put("/limits/{scope}/{subject}", dependencies=[Depends(admin)],
            summary="Set requests and tokens per minute for a user or key")
async def put_limit(request: Request, scope: Scope, subject: Subject, body: LimitIn) -> dict[
        str, Any]:
    await _service(request).limiter.put(scope, subject, body.rpm, body.tpm)
    return {"scope": scope, "subject": subject, "rpm": body.rpm, "tpm": body.tpm}


@router.delete("/limits/{scope}/{subject}", dependencies=[Depends(admin)], status_code=204)
async def delete_limit(request: Request, scope: Scope, subject: Subject) -> Response:
    if not await _service(request).limiter.remove(scope, subject):
        raise Problem(404, f"No rate limit for {scope} {subject!r}.")
    return Response(status_code=204)
