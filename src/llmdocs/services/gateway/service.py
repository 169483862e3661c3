"""The gateway's logic, free of HTTP: scan → route → cache → limits → budget → call with
fallbacks → settle, record and publish. Every step fails closed."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

import jsonschema  # type: ignore[import-untyped]
import orjson
import structlog
from cachetools import LRUCache
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Integer, func, select

from llmdocs.core.cache import Cache
from llmdocs.core.db import Database
from llmdocs.core.events import EventBus
from llmdocs.core.ids import random_bytes
from llmdocs.core.middleware import correlation_id_var
from llmdocs.services.gateway import providers as provider_factory
from llmdocs.services.gateway import telemetry
from llmdocs.services.gateway.accounting import (
    Admitted,
    Budgets,
    Completed,
    Hold,
    Limiter,
    Recorder,
    Subject,
)
from llmdocs.services.gateway.models import UsageRecord
from llmdocs.services.gateway.outgoing import Outgoing
from llmdocs.services.gateway.pricing import PriceTable, micros
from llmdocs.services.gateway.providers.base import (
    ChatRequest,
    ChatResult,
    Delta,
    Embeddings,
    ProviderError,
    text_of,
)
from llmdocs.services.gateway.routing import (
    CostPreference,
    Performance,
    Plan,
    ProviderState,
    Route,
    Router,
)
from llmdocs.services.gateway.security import Scan, Scanner, StreamRestorer, restore
from llmdocs.services.gateway.settings import GatewaySettings

log = structlog.get_logger(__name__)

Policy = Literal["local", "redact"]


class InvalidRequest(Exception):
    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail)
        self.detail, self.field = detail, field


@dataclass
class Call:
    """One chat call as the API hands it over."""

    messages: list[dict[str, Any]]
    model: str | None = None
    provider: str | None = None
    max_tokens: int = 256
    max_tokens_field: str = "max_tokens"  # as the caller named it, for refusals
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    json_schema: dict[str, Any] | None = None
    json_mode: bool = False
    cost: CostPreference = "balanced"
    performance: Performance = "normal"
    policy: Policy = "local"
    user_id: str = "anonymous"
    key_id: str = ""
    read_cache: bool = True
    write_cache: bool = True
    cache_ttl: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    text: str
    provider: str
    model: str
    upstream_model: str
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int
    cached: bool
    finish_reason: str
    reason: str
    sensitive: bool
    findings: list[dict[str, Any]]
    upstream_ms: float = 0.0  # the provider's time: 0 for a cached answer
    queue_ms: float = 0.0  # time spent waiting for the provider's slot (a local model's)
    id: str = field(default_factory=lambda: "chatcmpl-" + random_bytes(12).hex())
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def cost(self) -> float:
        return self.cost_micros / 1e6


@dataclass
class Prepared:
    """A call that passed the filter, routing, limits and budget, ready to run."""

    call: Call
    plan: Plan
    scan: Scan
    request: ChatRequest  # without the upstream model name, set per route
    placeholders: dict[str, str]
    cache_key: str | None
    subjects: list[Subject]
    admitted: Admitted  # the rate windows it is counted in
    tokens: int  # the tokens it holds in them: the most it can use
    reserved: int = 0  # micro-USD held on its budgets
    held: list[Hold] = field(default_factory=list)
    hit: dict[str, Any] | None = None
    settled: bool = False  # what it held was let go


class GatewayService:
    def __init__(self, settings: GatewaySettings, database: Database, events: EventBus,
                 cache: Cache, redis_url: str, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.database = database
        self.cache = cache
        self.prices = PriceTable(settings)
        self.scanner = Scanner(settings.keywords, settings.scan_max_chars,
                               settings.scan_processes)
        self.states = [
            ProviderState(provider_factory.build(config, settings), settings.breaker_failures,
                          settings.breaker_cooldown_seconds)
            for config in settings.providers
        ]
        self.router = Router(self.states, settings, self.prices)
        self.budgets = Budgets(database, cache, settings.default_budget_usd, redis_url,
                               events=events)
        self.limiter = Limiter(database, cache, redis_url, settings.default_rpm,
                               settings.default_tpm)
        self.recorder = Recorder(database, events)
        self.cache_results = Counter("llmdocs_gateway_cache", "Response cache lookups.",
                                     ("result",), registry=registry)
        self.provider_latency = Histogram(
            "llmdocs_gateway_provider_seconds", "Provider call latency.",
            ("provider", "outcome"), registry=registry,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self._cache_counts = {result: self.cache_results.labels(result)
                              for result in ("hit", "miss", "bypass")}
        self._latency_children: dict[tuple[str, str], Any] = {}
        # JSON schemas found valid, by their canonical JSON (up to 16 KiB each): callers
        # send the same few again and again; checking one against the metaschema takes
        # about 1 ms
        self._valid_schemas: LRUCache[bytes, bool] = LRUCache(maxsize=256)

    def _latency(self, provider: str, outcome: str) -> Any:
        """The metric's child, looked up once: `labels()` validates and locks each time
        (as many as providers times two outcomes)."""
        child = self._latency_children.get((provider, outcome))
        if child is None:
            child = self._latency_children[provider, outcome] = self.provider_latency.labels(
                provider, outcome)
        return child

    async def start(self, warm: bool) -> None:
        self.recorder.start()
        if warm:
            for state in self.states:
                await state.provider.start()

    async def aclose(self) -> None:
        self.scanner.close()
        await self.recorder.aclose()
        await self.limiter.aclose()
        await self.budgets.aclose()
        for state in self.states:
            await state.provider.aclose()

    # ---- preparing a call ---------------------------------------------------------

    def _check_schema(self, schema: dict[str, Any]) -> None:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        if key in self._valid_schemas:
            return
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise InvalidRequest(f"The JSON schema is not valid: {exc.message}",
                                 "response_format") from None
        if len(key) <= 16384:
            self._valid_schemas[key] = True

    async def prepare(self, call: Call) -> Prepared:
        if call.json_schema is not None:
            self._check_schema(call.json_schema)
        messages = [{**m, "content": text_of(m.get("content"))} for m in call.messages]
        request = ChatRequest("", messages, call.max_tokens, call.temperature, call.top_p,
                              call.stop, call.json_schema, call.json_mode)
        outgoing = Outgoing.of(request)
        scan = await self.scanner.scan(outgoing.texts)
        placeholders: dict[str, str] = {}
        route_sensitive = scan.sensitive
        if scan.sensitive and call.policy == "redact" and not scan.error:
            redacted = outgoing.redacted(scan, placeholders)
            # what is sent must hold nothing the filter finds, redaction or not
            if (await self.scanner.scan(Outgoing.of(redacted).texts)).sensitive:
                placeholders = {}
            else:
                request, route_sensitive = redacted, False
        scan = outgoing.located(scan)
        plan = self.router.plan(call.model, call.provider, sensitive=route_sensitive,
                                cost=call.cost, performance=call.performance,
                                max_tokens=call.max_tokens,
                                tokens_field=call.max_tokens_field)
        if placeholders:
            plan = replace(plan, reason="redacted; " + plan.reason)
        subjects: list[Subject] = [("user", call.user_id)]
        if call.key_id:
            subjects.append(("key", call.key_id))
        limits = await self.limiter.limits(subjects)
        tokens = outgoing.tokens() + call.max_tokens
        admitted = await self.limiter.admit(limits, tokens)
        # what was sent unredacted to a trusted provider is not kept anywhere
        cacheable = not route_sensitive
        key = self._cache_key(plan, request, call.provider) if cacheable else None
        prepared = Prepared(call, plan, scan, request, placeholders, key, subjects, admitted,
                            tokens)
        try:
            if key is not None and call.read_cache:
                prepared.hit = await self.cache.get(key)
                self._cache_counts["hit" if prepared.hit else "miss"].inc()
            else:
                self._cache_counts["bypass"].inc()
            if prepared.hit is None:
                prepared.reserved = micros(plan.max_price, tokens - call.max_tokens,
                                           call.max_tokens)
                if prepared.reserved:
                    prepared.held = await self.budgets.reserve(subjects, prepared.reserved)
        except BaseException:
            await self._settle(prepared, 0, 0)
            raise
        return prepared

    @staticmethod
    def _cache_key(plan: Plan, request: ChatRequest, provider: str | None) -> str:
        body = orjson.dumps([plan.alias, provider or "", request.messages, request.max_tokens,
                             request.temperature, request.top_p, request.stop,
                             request.json_schema, request.json_mode],
                            option=orjson.OPT_SORT_KEYS)
        return "gw:resp:" + hashlib.sha256(body).hexdigest()

    # ---- running it ---------------------------------------------------------------

    def _outcome(self, prepared: Prepared, route: Route | None, text: str,
                 result: ChatResult | Delta, cached: bool, elapsed_ms: float) -> Outcome:
        """`elapsed_ms` is the provider call's, its wait for a slot included."""
        prompt, completion = result.prompt_tokens or 0, result.completion_tokens or 0
        hit = prepared.hit or {}
        return Outcome(
            text=restore(text, prepared.placeholders), provider=route.state.name
            if route else hit["provider"], model=prepared.plan.alias,
            upstream_model=route.upstream if route else hit["upstream"],
            prompt_tokens=prompt, completion_tokens=completion,
            cost_micros=0 if cached or route is None
            else micros(route.price, prompt, completion),
            cached=cached, finish_reason=result.finish_reason or "stop",
            reason="cache hit" if cached else prepared.plan.reason,
            sensitive=prepared.scan.sensitive,
            findings=[f.as_dict() for f in prepared.scan.findings],
            upstream_ms=max(0.0, elapsed_ms - result.queued_ms), queue_ms=result.queued_ms)

    def _from_cache(self, prepared: Prepared) -> Outcome:
        hit = prepared.hit or {}
        result = ChatResult(hit["text"], hit["prompt_tokens"], hit["completion_tokens"],
                            hit["finish"])
        return self._outcome(prepared, None, hit["text"], result, True, 0.0)

    async def run(self, prepared: Prepared) -> Outcome:
        if prepared.hit is not None:
            outcome = self._from_cache(prepared)
            await self._finish(prepared, outcome, None)
            return outcome
        last: ProviderError | None = None
        try:
            for route in prepared.plan.routes:
                request = replace(prepared.request, model=route.upstream)
                for attempt in range(max(1, self.settings.retries)):
                    started = time.perf_counter()
                    try:
                        with telemetry.model_call(route.state.provider, request) as span:
                            result = await route.state.provider.chat(request)
                            telemetry.answered(span, request, result)
                    except ProviderError as exc:
                        last = exc
                        self._failed(route, exc, started)
                        if not exc.retryable:
                            raise
                        await asyncio.sleep(0.05 * 2 ** attempt)
                        continue
                    ms = self._succeeded(route, started)
                    outcome = self._outcome(prepared, route, result.text, result, False, ms)
                    await self._finish(prepared, outcome, result.text)
                    return outcome
        except BaseException:
            await self._settle(prepared, 0, 0)
            raise
        await self._settle(prepared, 0, 0)
        assert last is not None
        raise last

    async def stream(self, prepared: Prepared) -> AsyncGenerator[str | Outcome, None]:
        """Text pieces as they come, then the Outcome. Falls back to the next provider
        only before the first piece (after that the caller has part of an answer)."""
        if prepared.hit is not None:
            outcome = self._from_cache(prepared)
            for piece in _pieces(outcome.text):
                yield piece
            await self._finish(prepared, outcome, None)
            yield outcome
            return
        restorer = StreamRestorer(prepared.placeholders)
        last: ProviderError | None = None
        try:
            for route in prepared.plan.routes:
                request = replace(prepared.request, model=route.upstream)
                for attempt in range(max(1, self.settings.retries)):
                    started = time.perf_counter()
                    parts: list[str] = []
                    final = Delta("", "stop")
                    try:
                        with telemetry.model_call(route.state.provider, request) as span:
                            async for delta in route.state.provider.stream(request):
                                if delta.text:
                                    parts.append(delta.text)
                                    out = restorer.feed(delta.text)
                                    if out:
                                        yield out
                                if delta.finish_reason is not None:
                                    final = delta
                            telemetry.answered(span, request, final)
                    except ProviderError as exc:
                        last = exc
                        self._failed(route, exc, started)
                        if parts or not exc.retryable:
                            raise
                        await asyncio.sleep(0.05 * 2 ** attempt)
                        continue
                    ms = self._succeeded(route, started)
                    tail = restorer.flush()
                    if tail:
                        yield tail
                    text = "".join(parts)
                    outcome = self._outcome(prepared, route, text, final, False, ms)
                    await self._finish(prepared, outcome, text)
                    yield outcome
                    return
        finally:
            await asyncio.shield(self._settle(prepared, 0, 0))
        assert last is not None
        raise last

    def _failed(self, route: Route, exc: ProviderError, started: float) -> None:
        if exc.status < 500:
            route.state.refused()
        else:
            route.state.failed(exc.detail)
        self._latency(route.state.name, "error").observe(
            time.perf_counter() - started)
        log.warning("provider_failed", provider=route.state.name, status=exc.status,
                    error=exc.detail)

    def _succeeded(self, route: Route, started: float) -> float:
        seconds = time.perf_counter() - started
        route.state.succeeded(seconds * 1000)
        self._latency(route.state.name, "ok").observe(seconds)
        return seconds * 1000

    async def _settle(self, prepared: Prepared, cost: int, tokens: int) -> None:
        """Let go of what the call held on its budgets and rate windows and count what it
        used, once (a failure after it, or a stream closed after it, settles nothing)."""
        if prepared.settled:
            return
        prepared.settled = True
        await self.budgets.settle(prepared.held, prepared.reserved, cost)
        await self.limiter.settle(prepared.admitted, prepared.tokens, tokens)

    async def _finish(self, prepared: Prepared, outcome: Outcome, raw_text: str | None) -> None:
        """Settle the budget and tokens, cache the answer, record usage and event."""
        call = prepared.call
        await self._settle(prepared, outcome.cost_micros,
                           outcome.prompt_tokens + outcome.completion_tokens)
        if raw_text is not None and prepared.cache_key and call.write_cache:
            # the cached text keeps its placeholders: no original value is stored
            await self.cache.set(prepared.cache_key, {
                "text": raw_text, "provider": outcome.provider,
                "upstream": outcome.upstream_model, "prompt_tokens": outcome.prompt_tokens,
                "completion_tokens": outcome.completion_tokens,
                "finish": outcome.finish_reason,
            }, ttl=call.cache_ttl or self.settings.cache_ttl_seconds)
        await self._record(call, outcome, prepared.scan)

    async def _record(self, call: Call, outcome: Outcome, scan: Scan | None) -> None:
        """Queue the call's usage row and event; the writer builds both later."""
        correlation_id = correlation_id_var.get()
        now = datetime.now(UTC)
        await self.recorder.record(Completed(
            partial(_facts, call, outcome, scan, now, correlation_id), outcome.id, now,
            correlation_id, trace.get_current_span().get_span_context()))

    # ---- embeddings ---------------------------------------------------------------

    async def embed(self, model: str | None, inputs: list[str], user_id: str,
                    key_id: str) -> tuple[Embeddings, Outcome]:
        scan = await self.scanner.scan(inputs)
        plan = self.router.plan(model, None, sensitive=scan.sensitive, embeddings=True)
        last: ProviderError | None = None
        for route in plan.routes:
            started = time.perf_counter()
            try:
                result = await route.state.provider.embed(route.upstream, inputs)
            except ProviderError as exc:
                last = exc
                self._failed(route, exc, started)
                if not exc.retryable:
                    raise
                continue
            ms = self._succeeded(route, started)
            outcome = Outcome("", route.state.name, plan.alias, route.upstream,
                              result.prompt_tokens, 0,
                              micros(route.price, result.prompt_tokens, 0), False, "stop",
                              plan.reason, scan.sensitive,
                              [f.as_dict() for f in scan.findings], ms)
            await self._record(Call([], user_id=user_id, key_id=key_id), outcome, scan)
            return result, outcome
        assert last is not None
        raise last

    # ---- reading ------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        rows = [{"id": alias, "object": "model", "owned_by": ",".join(names)}
                for alias, names in sorted(self.router.aliases().items())]
        rows += [{"id": alias, "object": "model", "owned_by": ",".join(names),
                  "type": "embedding"}
                 for alias, names in sorted(self.router.aliases(embeddings=True).items())]
        return rows

    async def providers(self, probe: bool) -> list[dict[str, Any]]:
        async def one(state: ProviderState) -> dict[str, Any]:
            row: dict[str, Any] = {
                "name": state.name, "kind": state.provider.kind, "trusted": state.trusted,
                "models": sorted(state.provider.config.models),
                "embedding_models": sorted(state.provider.config.embedding_models),
                "circuit": state.state, "latency_ms": state.latency_ms,
                "calls": state.calls, "last_error": state.last_error,
            }
            if probe:
                try:
                    await asyncio.wait_for(state.provider.ping(), 5)
                    row["healthy"] = True
                except (ProviderError, TimeoutError) as exc:
                    row["healthy"], row["probe_error"] = False, str(exc)[:300]
            return row

        return list(await asyncio.gather(*(one(s) for s in self.states)))

    async def usage(self, user_id: str | None, since: str | None) -> dict[str, Any]:
        """Spend and tokens by user, key, model and day (a user's own, unless admin)."""
        await self.recorder.flush()
        cost = func.sum(UsageRecord.cost_micros)
        measures = (func.count(), func.sum(UsageRecord.prompt_tokens),
                    func.sum(UsageRecord.completion_tokens), cost,
                    func.sum(func.cast(UsageRecord.cached, Integer)))
        out: dict[str, Any] = {}
        async with self.database.session() as session:
            for name, column in (("by_user", UsageRecord.user_id),
                                 ("by_key", UsageRecord.key_id),
                                 ("by_model", UsageRecord.model), ("by_day", UsageRecord.day),
                                 ("total", None)):
                query = select(*(() if column is None else (column,)), *measures)
                if user_id is not None:
                    query = query.where(UsageRecord.user_id == user_id)
                if since:
                    query = query.where(UsageRecord.day >= since)
                if column is not None:
                    query = query.group_by(column).order_by(column)
                rows = [_usage_row(row, column is not None) for row in await session.execute(query)]
                out[name] = rows if column is not None else rows[0]
        return out


def _facts(call: Call, outcome: Outcome, scan: Scan | None, now: datetime,
           correlation_id: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The usage row and the completed event's data of one call (no prompt text)."""
    usage = {
        "created_at": now, "day": now.date().isoformat(),
        "user_id": call.user_id, "key_id": call.key_id, "provider": outcome.provider,
        "model": outcome.model, "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "cost_micros": outcome.cost_micros, "cached": outcome.cached,
        "latency_ms": round(outcome.upstream_ms, 3), "correlation_id": correlation_id,
    }
    data = {
        "provider": outcome.provider, "model": outcome.model,
        "upstream_model": outcome.upstream_model,
        "tokens": {"prompt": outcome.prompt_tokens,
                   "completion": outcome.completion_tokens},
        "cost": outcome.cost, "latency_ms": round(outcome.upstream_ms, 3),
        "queue_ms": round(outcome.queue_ms, 3),
        "cached": outcome.cached, "routing_reason": outcome.reason,
        "sensitive": outcome.sensitive,
        "finding_types": scan.types if scan else [],
        "findings": outcome.findings,  # type and span only, never the text
        "user_id": call.user_id, "key_id": call.key_id,
        "prompt_id": call.metadata.get("prompt_id"),
        "prompt_version": call.metadata.get("prompt_version"),
    }
    return usage, data


def _usage_row(row: Any, keyed: bool) -> dict[str, Any]:
    values = list(row)
    key = values.pop(0) if keyed else None
    calls, prompt, completion, cost, cached = (v or 0 for v in values)
    body = {"calls": calls, "prompt_tokens": prompt, "completion_tokens": completion,
            "cost": cost / 1e6, "cached_calls": cached}
    return {"key": key, **body} if keyed else body


def _pieces(text: str) -> list[str]:
    """A cached answer replayed as a stream, a word at a time."""
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words) if w or i]
