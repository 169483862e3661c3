"""What the issue asks for that the other modules leave out: cached streams, TTL per
request, fallback on timeout and the 504, a failing detector end to end, usage grouped
by user/key/model/day, providers with prices."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from llmdocs.core.config import Settings
from llmdocs.services.gateway.security import DETECTOR_ERROR
from llmdocs.services.gateway.settings import Price, ProviderConfig
from services.gateway.conftest import Fake, Gateway, headers
from services.gateway.test_gateway_policy import LOCAL, remote

CHAT = {"model": "gpt-4o-mini", "max_tokens": 20, "stream": True,
        "messages": [{"role": "user", "content": "stream me please"}]}


async def _stream(http: httpx.AsyncClient, body: dict[str, Any],
                  **extra: Any) -> tuple[str, dict[str, Any]]:
    """The streamed text and the gateway's fields from the last chunk."""
    async with http.stream("POST", "/v1/chat/completions", json=body, **extra) as response:
        assert response.status_code == 200
        events = [json.loads(line[5:]) async for line in response.aiter_lines()
                  if line.startswith("data:") and line != "data: [DONE]"]
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    return text, events[-1]["gateway"]


async def test_streams_are_cached_and_replayed(gateway: Gateway, fake: Fake,
                                               settings: Settings) -> None:
    upstream, url = await fake("openai")
    app = await gateway(remote(url))
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        first, fields = await _stream(http, CHAT)
        assert first == "echo: stream me please" and fields["cached"] is False
        again, fields = await _stream(http, CHAT)
        assert (again, fields["cached"], len(upstream.bodies)) == (first, True, 1)
        whole = await http.post("/v1/chat/completions", json={**CHAT, "stream": False})
        assert whole.json()["gateway"]["cached"] is True  # one cache for both forms
        assert whole.json()["choices"][0]["message"]["content"] == first
        _, fields = await _stream(http, CHAT, headers={"Cache-Control": "no-cache"})
        assert fields["cached"] is False and len(upstream.bodies) == 2


async def test_cache_ttl_is_chosen_per_request(gateway: Gateway, fake: Fake,
                                               settings: Settings, redis_url: str) -> None:
    _, url = await fake("openai")
    app = await gateway(remote(url), kernel=settings.model_copy(
        update={"cache_url": redis_url}))
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        short = await http.post("/query", json={"prompt": "short", "cache_ttl": 7})
        long = await http.post("/query", json={"prompt": "long"})  # the default, 300 s
        assert short.status_code == long.status_code == 200
    client = aioredis.from_url(redis_url)
    keys = [key async for key in client.scan_iter("llmdocs:cache:gateway:k:gw:resp:*")]
    ttls = sorted([await client.pttl(key) for key in keys])
    await client.aclose()
    assert len(ttls) == 2
    assert 0 < ttls[0] <= 7_000 < 290_000 < ttls[1] <= 300_000


async def test_a_timeout_falls_back_and_alone_is_a_504_naming_the_provider(
        gateway: Gateway, fake: Fake, settings: Settings) -> None:
    slow, slow_url = await fake("openai")
    slow.delay = 5
    _, quick_url = await fake("openai")
    stalled = ProviderConfig(name="stalled", kind="openai", base_url=slow_url,
                             models={"m": "m"}, prices={"m": Price(input=1, output=1)},
                             timeout_seconds=0.3)
    quick = ProviderConfig(name="quick", kind="openai", base_url=quick_url,
                           models={"m": "m"}, prices={"m": Price(input=2, output=2)})
    app = await gateway(stalled, quick, retries=1)
    alone = await gateway(stalled, retries=1)
    async with httpx.AsyncClient(timeout=60, headers=headers(settings)) as http:
        answer = await http.post(app.url + "/query", json={
            "prompt": "hi", "model": "m", "cost_preference": "low"})
        assert answer.json()["provider"] == "quick" and len(slow.bodies) == 1
        timed_out = await http.post(alone.url + "/query", json={"prompt": "hi", "model": "m"})
        assert timed_out.status_code == 504
        assert "'stalled'" in timed_out.json()["detail"]
        assert "timed out" in timed_out.json()["detail"]


async def test_a_failing_detector_keeps_the_request_off_untrusted_providers(
        gateway: Gateway, fake: Fake, settings: Settings) -> None:
    upstream, url = await fake("openai")
    apps = [await gateway(remote(url)), await gateway(remote(url), LOCAL)]
    for app in apps:
        app.app.state.gateway.scanner.detector._value_plugins = [("broken", object())]
    async with httpx.AsyncClient(timeout=60, headers=headers(settings)) as http:
        refused = await http.post(apps[0].url + "/query", json={"prompt": "harmless"})
        assert refused.status_code == 422 and upstream.bodies == []
        local = await http.post(apps[1].url + "/query", json={
            "prompt": "harmless", "max_tokens": 4, "policy": "redact"})
        body = local.json()  # nothing to redact by: it goes to the trusted provider
        assert body["provider"] == "local" and upstream.bodies == []
        assert body["routing"]["sensitive"] is True
        assert [f["type"] for f in body["routing"]["findings"]] == [DETECTOR_ERROR]


async def test_usage_by_user_key_model_day_and_providers_with_prices(
        gateway: Gateway, fake: Fake, settings: Settings) -> None:
    _, url = await fake("openai")
    priced = remote(url, prices={"gpt-4o-mini": Price(input=1000, output=2000)})
    claude = ProviderConfig(name="claude", kind="anthropic", base_url="http://127.0.0.1:9",
                            api_key=SecretStr("sk-ant-x"), models={"haiku": "claude-x"})
    app = await gateway(priced, claude)
    ann, ann_again, bob = (headers(settings, "user:ann"), headers(settings, "user:ann"),
                           headers(settings, "user:bob"))
    admin = headers(settings, "user:root", "llm:*")
    async with httpx.AsyncClient(base_url=app.url, timeout=60) as http:
        for who, model, prompt in ((ann, "gpt-4o-mini", "one two"),
                                   (ann_again, "smollm2", "three"),
                                   (bob, "gpt-4o-mini", "four five six")):
            answer = await http.post("/query", headers=who, json={"prompt": prompt,
                                                                  "model": model})
            assert answer.status_code == 200, answer.text
        everyone = (await http.get("/usage", headers=admin)).json()
        today = datetime.now(UTC).date().isoformat()
        assert {r["key"]: r["calls"] for r in everyone["by_user"]} == {"user:ann": 2,
                                                                      "user:bob": 1}
        assert {r["key"]: r["calls"] for r in everyone["by_model"]} == {"gpt-4o-mini": 2,
                                                                       "smollm2": 1}
        assert sorted(r["calls"] for r in everyone["by_key"]) == [1, 1, 1]  # one per token
        assert [(r["key"], r["calls"]) for r in everyone["by_day"]] == [(today, 3)]
        assert everyone["total"]["cost"] == pytest.approx(
            sum(r["cost"] for r in everyone["by_user"]))
        assert everyone["total"]["cost"] > 0
        own = (await http.get("/usage", headers=ann, params={"user_id": "user:bob"})).json()
        assert [r["key"] for r in own["by_user"]] == ["user:ann"]  # only their own
        later = (await http.get("/usage", headers=admin, params={"since": "2999-01-01"}))
        assert later.json()["total"]["calls"] == 0
        assert (await http.get("/usage", headers=admin,
                               params={"since": "yesterday"})).status_code == 422

        listed = (await http.get("/providers", headers=ann, params={"probe": "true"})).json()
        health = {p["name"]: (p["healthy"], p["trusted"]) for p in listed["providers"]}
        assert health == {"cloud": (True, False), "claude": (False, False)}
        prices = {(r["provider"], r["model"]): (r["input_per_million"],
                                                r["output_per_million"])
                  for r in listed["prices"]}
        assert prices[("cloud", "gpt-4o-mini")] == (1000, 2000)
        assert prices[("claude", "haiku")] == (0, 0)  # no list price for an unknown model
