"""Sessions in distributed mode: PostgreSQL holds them and Redis caches them, so a
session begun at one portal replica works at another, and signing out at one ends it
at every one at once (the cache's invalidation reaches each replica)."""

from __future__ import annotations

from typing import Any

import httpx

from llmdocs.core.config import Settings
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from services.web.portal import csrf_of, link_for, start_portal


async def test_a_session_spans_replicas_and_ends_at_all(settings: Settings, serve: Any,
                                                        pg_url: str, redis_url: str) -> None:
    distributed = settings.model_copy(update={"database_url": pg_url, "cache_url": redis_url})
    eco = await start_portal(distributed, serve, ("docstore",))
    other = await serve(create_app("web", eco), port=free_port())
    async with httpx.AsyncClient(base_url=eco.url_for("web"), timeout=30) as first:
        assert (await first.get(link_for(eco, "user:dana"))).status_code == 303
        page = await first.get("/")
        assert page.status_code == 200 and "user:dana" in page.text
        token = csrf_of(page.text)
        async with httpx.AsyncClient(base_url=other.url, timeout=30,
                                     cookies=dict(first.cookies)) as second:
            seen = await second.get("/")
            assert seen.status_code == 200 and "user:dana" in seen.text
            out = await second.post("/logout", data={"csrf_token": token})
            assert out.status_code == 303
        assert (await first.get("/")).status_code == 303  # at once, not after the cache
