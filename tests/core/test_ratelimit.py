"""Per-principal rate limits of every service, over real HTTP: a user's budget, other
principals' own, services acting as themselves, refused tokens per client address,
two replicas sharing one real Redis, and a Redis that dies mid-test."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from core.test_app import demo_spec
from llmdocs.core.app import create_service_app
from llmdocs.core.auth import Principal, delegated_token, issue_token, service_token
from llmdocs.core.config import Settings
from llmdocs.core.errors import PROBLEM_JSON
from llmdocs.core.ratelimit import quota
from llmdocs.devservers import RedisServer
from llmdocs.services import HOOKS
from waiting import eventually

LIMIT = 3


def limited(settings: Settings, **more: Any) -> Settings:
    """`LIMIT` requests at once per user, refilled at one a second."""
    return settings.model_copy(update={"rate_limit_per_minute": 60,
                                       "rate_limit_burst": LIMIT, **more})


async def started(serve: Any, settings: Settings) -> Any:
    return await serve(create_service_app(demo_spec(), settings, hooks=HOOKS))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def user(settings: Settings, subject: str = "user:a") -> dict[str, str]:
    return bearer(issue_token(settings, subject, ["*"]))


async def test_the_request_past_the_budget_is_a_429_that_says_when_to_retry(
        serve: Any, settings: Settings) -> None:
    settings = limited(settings)
    demo = await started(serve, settings)
    async with httpx.AsyncClient(base_url=demo.url, headers=user(settings)) as http:
        admitted = [await http.get("/widgets") for _ in range(LIMIT)]
        refused = await http.get("/widgets")
    assert [r.status_code for r in admitted] == [200] * LIMIT
    assert [r.headers["ratelimit-remaining"] for r in admitted] == ["2", "1", "0"]
    assert all(r.headers["ratelimit-limit"] == str(LIMIT) for r in admitted)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert refused.headers["retry-after"] == "1"  # one request a second comes back
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-limit"] == str(LIMIT)
    assert 1 <= int(refused.headers["ratelimit-reset"]) <= LIMIT
    problem = refused.json()
    assert problem["status"] == 429 and problem["type"].endswith("rate-limited")
    assert "'user:a'" in problem["detail"] and problem["instance"] == "/widgets"


async def test_other_principals_have_budgets_of_their_own(serve: Any, settings: Settings
                                                          ) -> None:
    settings = limited(settings)
    demo = await started(serve, settings)
    async with httpx.AsyncClient(base_url=demo.url) as http:
        for _ in range(LIMIT + 1):
            last = await http.get("/widgets", headers=user(settings))
        assert last.status_code == 429
        other = await http.get("/widgets", headers=user(settings, "user:b"))
        assert other.status_code == 200
        # a service acting for user:a spends user:a's budget, not its own
        acting = Principal("user:a", frozenset({"*"}), {"exp": 2**40})
        obo = await http.get("/widgets", headers=bearer(delegated_token(
            settings, "orchestrator", acting)))
        assert obo.status_code == 429
        # one acting as itself is not limited by default: it fans out users' requests
        own = [await http.get("/widgets", headers=bearer(service_token(settings, "gateway")))
               for _ in range(LIMIT * 3)]
        assert {r.status_code for r in own} == {200}
        assert "ratelimit-limit" not in own[0].headers
        # public routes are never limited
        assert (await http.get("/health/live", headers=user(settings))).status_code == 200
        assert (await http.get("/metrics", headers=user(settings))).status_code == 200


async def test_a_service_limit_when_configured_is_its_own(serve: Any, settings: Settings
                                                          ) -> None:
    settings = limited(settings, rate_limit_service_per_minute=120)
    demo = await started(serve, settings)
    async with httpx.AsyncClient(base_url=demo.url) as http:
        own = [await http.get("/widgets", headers=bearer(service_token(settings, "gateway")))
               for _ in range(LIMIT + 1)]
        assert [r.status_code for r in own] == [200] * LIMIT + [429]
        assert own[-1].headers["retry-after"] == "1"
        assert (await http.get("/widgets", headers=user(settings))).status_code == 200


async def test_the_caller_is_admitted_again_after_retry_after(serve: Any, settings: Settings
                                                              ) -> None:
    settings = limited(settings)
    demo = await started(serve, settings)
    async with httpx.AsyncClient(base_url=demo.url, headers=user(settings)) as http:
        for _ in range(LIMIT + 1):
            refused = await http.get("/widgets")
        assert refused.status_code == 429
        await asyncio.sleep(int(refused.headers["retry-after"]))
        again = await http.get("/widgets")
        assert again.status_code == 200, again.text
        assert (await http.get("/widgets")).status_code == 429  # one came back, not all


async def test_a_per_service_override_wins(serve: Any, settings: Settings) -> None:
    # per minute and at once: LIMIT for the others, but 6000 for the demo's key
    settings = settings.model_copy(update={"rate_limit_per_minute": LIMIT,
                                           "rate_limit_services": {"docstore": 6000}})
    demo = await started(serve, settings)
    async with httpx.AsyncClient(base_url=demo.url, headers=user(settings)) as http:
        answers = [await http.get("/widgets") for _ in range(LIMIT * 2)]
    assert {r.status_code for r in answers} == {200}


async def test_replicas_share_one_budget_through_redis(serve: Any, settings: Settings,
                                                       redis_url: str) -> None:
    settings = limited(settings, cache_url=redis_url)
    replicas = [await started(serve, settings), await started(serve, settings)]
    statuses = []
    async with httpx.AsyncClient(headers=user(settings)) as http:
        for i in range(LIMIT * 2):  # alternating: each replica alone would admit them all
            answer = await http.get(replicas[i % 2].url + "/widgets")
            statuses.append(answer.status_code)
    assert statuses == [200] * LIMIT + [429] * LIMIT


async def test_requests_are_served_on_the_local_limiter_while_redis_is_down(
        serve: Any, settings: Settings, redis_server: RedisServer) -> None:
    settings = limited(settings, cache_url=redis_server.url)
    demo = await started(serve, settings)
    async with httpx.AsyncClient(base_url=demo.url) as http:
        assert (await http.get("/widgets", headers=user(settings))).status_code == 200
        redis_server.stop()
        # user:a spent one in Redis; this process now counts on its own, from zero
        down = [await http.get("/widgets", headers=user(settings)) for _ in range(LIMIT + 1)]
        assert [r.status_code for r in down] == [200] * LIMIT + [429]
        assert (await http.get("/widgets", headers=user(settings, "user:b"))).status_code \
            == 200
        # back: a probe in the background finds it, and requests are counted there again
        redis_server.start()
        store = aioredis.Redis.from_url(redis_server.url)

        async def counted_in_redis() -> bool:
            await http.get("/widgets", headers=user(settings, "user:c"))
            return bool(await store.exists("llmdocs:ratelimit:docstore:user:user:c"))

        try:
            await eventually(counted_in_redis, attempts=3000)  # the probe waits 5 s
        finally:
            await store.aclose()


async def test_a_flood_of_refused_tokens_is_limited_per_address(serve: Any,
                                                                settings: Settings) -> None:
    settings = limited(settings, rate_limit_failures_per_minute=LIMIT)
    demo = await started(serve, settings)
    async with httpx.AsyncClient(base_url=demo.url) as http:
        refused = [await http.get("/widgets", headers=bearer(f"guess-{i}"))
                   for i in range(LIMIT)]
        assert {r.status_code for r in refused} == {401}
        flood = await http.get("/widgets")  # no token at all counts too
        assert flood.status_code == 429 and int(flood.headers["retry-after"]) >= 1
        assert flood.headers["content-type"] == PROBLEM_JSON
        # the address is refused anything for a while, a valid token too: a guess
        # that happens to be right tells the guesser nothing
        valid = await http.get("/widgets", headers=user(settings))
        assert valid.status_code == 429
        assert (await http.get("/health/live")).status_code == 200
    # another address is not held back by it (127.0.0.2 is loopback too)
    other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=demo.url, transport=other) as http:
        assert (await http.get("/widgets")).status_code == 401
        assert (await http.get("/widgets", headers=user(settings))).status_code == 200


async def test_zero_turns_the_limits_off(serve: Any, settings: Settings) -> None:
    settings = settings.model_copy(update={"rate_limit_per_minute": 0,
                                           "rate_limit_failures_per_minute": 0})
    demo = await started(serve, settings)
    async with httpx.AsyncClient(base_url=demo.url) as http:
        answers = [await http.get("/widgets", headers=user(settings)) for _ in range(50)]
        refused = [await http.get("/widgets") for _ in range(50)]
    assert {r.status_code for r in answers} == {200}
    assert "ratelimit-limit" not in answers[0].headers
    assert {r.status_code for r in refused} == {401}


@pytest.mark.parametrize("per_minute", [1, 7, 6000])
def test_settings_default_the_burst_to_a_minute(per_minute: int) -> None:
    found = quota(per_minute, 0)
    assert found is not None and found.burst == per_minute
    assert quota(0, 5) is None


def test_per_service_limits_are_read_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDOCS_RATE_LIMIT_SERVICES", '{"gateway": 600}')
    assert Settings().rate_limit_services == {"gateway": 600}
    monkeypatch.setenv("LLMDOCS_RATE_LIMIT_SERVICES", '{"gatway": 600}')
    with pytest.raises(ValueError, match="no service is named gatway"):
        Settings()
