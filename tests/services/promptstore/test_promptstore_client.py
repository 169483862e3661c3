"""The typed client: cache, background refresh, last-good and seed fallback, A/B."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from llmdocs.core.auth import issue_token
from llmdocs.core.client import ServiceUnavailable, Unprocessable
from llmdocs.core.config import Settings
from llmdocs.services import create_app
from llmdocs.services.promptstore import abtest
from llmdocs.services.promptstore.client import PromptStoreClient
from llmdocs.services.promptstore.schemas import PromptIn, VersionIn


def make_client(settings: Settings, url: str, ttl: float = 60.0) -> PromptStoreClient:
    token = issue_token(settings, "service:orchestrator", ["prompts:read", "prompts:write"])
    return PromptStoreClient(url, token=token, retries=1, timeout=2.0, cache_ttl=ttl)


async def test_outage_serves_last_good_then_seeds_then_fails(
    serve: Any, settings: Settings
) -> None:
    running = await serve(create_app("promptstore", settings))
    async with make_client(settings, running.url) as client:
        await client.create(PromptIn(name="mine", content="Mine {{ x }}"))
        fetched = await client.get("mine")
        assert fetched.version == 1
        outline = await client.get("outline")
        await running.stop()

        assert await client.get("mine") == fetched
        rendered = await client.render("mine", {"x": "ok"})
        assert rendered.text == "Mine ok"
        with pytest.raises(Unprocessable) as bad:
            await client.render("mine", {"y": 1})
        assert "unknown: y" in str(bad.value)
        assert (await client.get("outline")).content == outline.content

        seed = await client.get("section-writing")  # never fetched: the packaged seed
        assert (seed.version, seed.label, seed.prompt_id) == (0, "seed", "seed:section-writing")
        text = (await client.render("section-writing", {
            "query": "q", "outline": "o", "section": "s", "sources": "src"})).text
        assert text is not None and "Section to write now: s" in text
        with pytest.raises(ServiceUnavailable):
            await client.get("mine", label="staging")
        assert await client.record_outcome("t", 1, success=True) is None


async def test_stale_entries_refresh_in_the_background(serve: Any, settings: Settings) -> None:
    running = await serve(create_app("promptstore", settings))
    async with make_client(settings, running.url, ttl=0.0) as client:
        made = await client.create(PromptIn(name="mine", content="One {{ x }}"))
        assert (await client.get("mine")).version == 1
        await client.add_version(made.id, VersionIn(content="Two {{ x }}",
                                                    labels=["production"]))
        stale = await client.get("mine")  # served at once, refresh started
        assert stale.version == 1
        for _ in range(200):
            if (await client.get("mine")).version == 2:
                break
            await asyncio.sleep(0.02)
        assert (await client.get("mine")).version == 2


async def test_client_assignment_matches_the_store(serve: Any, settings: Settings,
                                                   auth: Any) -> None:
    running = await serve(create_app("promptstore", settings))
    async with make_client(settings, running.url) as client, httpx.AsyncClient(
            base_url=running.url + "/api/v1", headers=auth("prompts:*")) as http:
        made = await client.create(PromptIn(name="mine", content="One {{ x }}"))
        await client.add_version(made.id, VersionIn(content="Two {{ x }}"))
        test = (await http.post("/abtests", json={"prompt": "mine", "name": "t", "variants": [
            {"version": 1, "weight": 50}, {"version": 2, "weight": 50}]})).json()
        # a client learns of a test within its cache TTL; a new one knows at once
        async with make_client(settings, running.url) as fresh:
            locals_ = {s: await fresh.get("mine", ab_subject=s)
                       for s in ("ada", "bob", "cy", "dee", "eve", "fay")}
        for subject, local in locals_.items():
            remote = (await http.get("/prompts/by-name/mine",
                                     params={"ab_subject": subject})).json()
            assert local.version == remote["version"]
            assert local.version == abtest.assign(test["id"], subject, [(1, 50), (2, 50)])
            assert local.ab_test is not None and local.ab_test.variant == local.version
        results = await client.record_outcome(test["id"], 2, subject="ada", success=True)
        assert results is not None and results.variants[1].n == 1
