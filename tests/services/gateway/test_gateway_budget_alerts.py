"""A budget announces its spend passing 80% once, and its exhaustion once however many
calls it refuses, on the SQL row and on the Redis counter alike."""

from __future__ import annotations

import httpx
import pytest

from llmdocs.core.config import Settings
from llmdocs.services.gateway.thresholds import BUDGET_THRESHOLD
from services.gateway.conftest import Fake, Gateway, headers
from services.gateway.test_gateway_budgets import PRICED, kernel  # noqa: F401
from services.gateway.test_gateway_policy import remote

LIMIT = 0.15  # a call holds about $0.02: refused only past 0.13, so 80% is passed first


async def test_a_budget_announces_80_and_100_percent_once_each(
        kernel: Settings, gateway: Gateway, fake: Fake, settings: Settings) -> None:  # noqa: F811
    _, url = await fake("openai")
    app = await gateway(remote(url, prices=PRICED), kernel=kernel)
    admin = headers(settings, "user:root", "llm:*")
    bob = headers(settings, "user:bob")
    async with httpx.AsyncClient(base_url=app.url, timeout=60) as http:
        await http.put("/budgets/user/user:bob", json={"limit_usd": LIMIT}, headers=admin)
        statuses: list[int] = []
        while statuses.count(402) < 3:  # refused three times: announced once
            statuses.append((await http.post("/query", headers=bob, json={
                "prompt": f"question {len(statuses)}", "model": "gpt-4o-mini",
                "max_tokens": 10})).status_code)
        assert set(statuses) == {200, 402}
    events = [event for _, event in await app.app.state.resources.events.replay(limit=1000)
              if event.type == BUDGET_THRESHOLD]
    assert [(e.data["percent"], e.data["refused"]) for e in events] == [(80, False),
                                                                        (100, True)]
    warned = events[0].data
    assert (warned["scope"], warned["subject"], warned["window"]) == ("user", "user:bob",
                                                                      "total")
    assert warned["limit_usd"] == pytest.approx(LIMIT)
    assert warned["spent_usd"] >= 0.8 * LIMIT
    assert events[1].subject == "user:user:bob"
