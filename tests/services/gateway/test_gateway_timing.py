"""What an answer says of its time: `processing_time` is the gateway's whole time,
`provider_time` the model's own and `queue_time` the wait for the local model, which
answers one call at a time; a cached answer took no provider time."""

from __future__ import annotations

import asyncio

import httpx

from llmdocs.core.config import Settings
from services.gateway.conftest import Gateway, headers


async def test_each_answer_separates_the_providers_time_from_its_wait(
        gateway: Gateway, settings: Settings) -> None:
    app = await gateway()
    asks = [{"prompt": f"Name a colour of the rainbow, number {i}.", "max_tokens": 16,
             "temperature": 0} for i in range(3)]
    async with httpx.AsyncClient(base_url=app.url, timeout=120,
                                 headers=headers(settings)) as http:
        answers = [a.json() for a in await asyncio.gather(
            *(http.post("/query", json=ask) for ask in asks))]
        again = (await http.post("/query", json=asks[0])).json()
    for body in answers:
        assert not body["cached"] and body["provider_time"] > 0
        assert body["provider_time"] + body["queue_time"] <= body["processing_time"]
    # three at once on one local model: a later one waits for an earlier one
    assert any(body["queue_time"] > 0 for body in answers)
    assert again["cached"] and again["provider_time"] == again["queue_time"] == 0
