"""Budgets and rate limits shared by replicas through one Redis counter, and budget
periods that start again at the UTC day's boundary (on Redis and on the SQL row)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from llmdocs.core.config import Settings
from llmdocs.services.gateway import accounting
from llmdocs.services.gateway.settings import Price
from services.gateway.conftest import Fake, Gateway, headers
from services.gateway.test_gateway_policy import remote

PRICED = {"gpt-4o-mini": Price(input=1000, output=1000)}  # ~$0.02 a request reserved
COST = 0.02


async def _bob_budget(http: httpx.AsyncClient, url: str,
                      admin: dict[str, str]) -> dict[str, Any]:
    budgets = (await http.get(url + "/budgets", headers=admin)).json()
    found: dict[str, Any] = next(b for b in budgets if b["subject"] == "user:bob")
    return found


async def test_two_replicas_share_one_redis_budget_and_rate_limit(
        gateway: Gateway, fake: Fake, settings: Settings, redis_url: str) -> None:
    _, url = await fake("openai")
    shared = settings.model_copy(update={"cache_url": redis_url})
    one = await gateway(remote(url, prices=PRICED), kernel=shared)
    two = await gateway(remote(url, prices=PRICED), kernel=shared)
    admin = headers(settings, "user:root", "llm:*")
    bob = headers(settings, "user:bob")
    async with httpx.AsyncClient(timeout=60) as http:
        put = await http.put(one.url + "/budgets/user/user:bob", json={"limit_usd": 0.1},
                             headers=admin)
        assert put.status_code == 200, put.text

        async def ask(i: int) -> int:
            replica = (one, two)[i % 2]
            response = await http.post(replica.url + "/query", headers=bob, json={
                "prompt": f"question number {i}", "model": "gpt-4o-mini", "max_tokens": 10})
            return response.status_code

        statuses = await asyncio.gather(*(ask(i) for i in range(100)))
        assert set(statuses) == {200, 402} and statuses.count(200) >= 3
        budget = await _bob_budget(http, two.url, admin)
        assert budget["reserved_usd"] == 0
        assert budget["spent_usd"] <= 0.1 + COST  # overshoot at most one request's cost
        for replica in (one, two):  # each flushes its own recorder
            await http.get(replica.url + "/usage", headers=bob)
        calls = [(await http.get(r.url + "/usage", headers=bob)).json()["total"]
                 for r in (one, two)]
        assert calls[0] == calls[1]  # one database behind both replicas
        assert calls[0]["calls"] == statuses.count(200)
        assert calls[0]["cost"] == pytest.approx(budget["spent_usd"])

        # the counter is Redis's, not either replica's row
        client = aioredis.from_url(redis_url)
        spent = await client.hget("llmdocs:gateway:budget:user:user:bob:total", "s")
        await client.aclose()
        assert int(spent or 0) / 1e6 == pytest.approx(budget["spent_usd"])

        await http.put(one.url + "/limits/user/user:carl", json={"rpm": 2}, headers=admin)
        carl = headers(settings, "user:carl")
        codes = [(await http.post(r.url + "/query", headers=carl,
                                  json={"prompt": f"q{i}"})).status_code
                 for i, r in enumerate((one, two, one, two))]
        assert codes == [200, 200, 429, 429]


@pytest.fixture(params=["sql", "redis"])
def kernel(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The budget counter in the database row, or in Redis."""
    if request.param == "sql":
        return settings
    return settings.model_copy(update={"cache_url": request.getfixturevalue("redis_url")})


async def test_a_daily_budget_starts_again_at_the_day_boundary(
        kernel: Settings, gateway: Gateway, fake: Fake, settings: Settings) -> None:
    _, url = await fake("openai")
    app = await gateway(remote(url, prices=PRICED), kernel=kernel)
    now = [datetime(2026, 11, 26, 23, 59, 30, tzinfo=UTC)]
    app.app.state.gateway.budgets.clock = lambda: now[0]
    admin = headers(settings, "user:root", "llm:*")
    bob = headers(settings, "user:bob")
    prompts = iter(range(1000))
    async with httpx.AsyncClient(base_url=app.url, timeout=60) as http:
        await http.put("/budgets/user/user:bob", json={"limit_usd": 0.05, "period": "daily"},
                       headers=admin)

        async def spend_until_refused() -> int:
            answered = 0
            while True:
                status = (await http.post("/query", headers=bob, json={
                    "prompt": f"question {next(prompts)}", "model": "gpt-4o-mini",
                    "max_tokens": 10})).status_code
                if status == 402:
                    return answered
                assert status == 200
                answered += 1

        first_day = await spend_until_refused()
        assert first_day >= 2
        before = await _bob_budget(http, app.url, admin)
        assert before["window"] == "2026-11-26" and before["spent_usd"] > 0.03

        now[0] += timedelta(seconds=29)  # 23:59:59: still the same day
        assert (await http.post("/query", headers=bob, json={
            "prompt": "one more", "model": "gpt-4o-mini", "max_tokens": 10})).status_code == 402

        now[0] += timedelta(seconds=1)  # midnight UTC: a new window
        fresh = await _bob_budget(http, app.url, admin)
        assert (fresh["window"], fresh["spent_usd"], fresh["reserved_usd"]) == (
            "2026-11-27", 0, 0)
        assert await spend_until_refused() == first_day
        assert (await _bob_budget(http, app.url, admin))["spent_usd"] == pytest.approx(
            before["spent_usd"])


async def test_a_redis_budget_counter_starts_again_from_the_database_copy(
        gateway: Gateway, fake: Fake, settings: Settings, redis_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis loses a counter (a restart without persistence, an eviction): the budget
    goes on from the copy in the database, instead of starting again from zero."""
    monkeypatch.setattr(accounting, "COPY_SECONDS", 0.0)  # copy after every call
    _, url = await fake("openai")
    app = await gateway(remote(url, prices=PRICED),
                        kernel=settings.model_copy(update={"cache_url": redis_url}))
    admin = headers(settings, "user:root", "llm:*")
    bob = headers(settings, "user:bob")
    async with httpx.AsyncClient(base_url=app.url, timeout=60) as http:
        await http.put("/budgets/user/user:bob", json={"limit_usd": 0.05}, headers=admin)

        async def ask(i: int) -> int:
            return (await http.post("/query", headers=bob, json={
                "prompt": f"question {i}", "model": "gpt-4o-mini",
                "max_tokens": 10})).status_code

        answered = 0
        while await ask(answered) == 200:
            answered += 1
        assert answered >= 2
        spent = (await _bob_budget(http, app.url, admin))["spent_usd"]

        client = aioredis.from_url(redis_url)
        assert await client.delete("llmdocs:gateway:budget:user:user:bob:total") == 1
        await client.aclose()
        assert (await _bob_budget(http, app.url, admin))["spent_usd"] == pytest.approx(spent)
        assert await ask(1000) == 402  # from zero, it would have been answered
        assert (await _bob_budget(http, app.url, admin))["spent_usd"] == pytest.approx(spent)
