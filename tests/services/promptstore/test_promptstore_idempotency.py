"""Every creating POST of the prompt-store takes an Idempotency-Key: sent again with
the same key and body it answers as the first time and creates nothing; another body
with the key is a 422. SQLite and PostgreSQL, over HTTP; the llm-gateway a local
stand-in."""

from __future__ import annotations

from typing import Any

import httpx

from keyed import created_once
from llmdocs.core.config import Settings
from llmdocs.services import create_app
from services.promptstore.test_promptstore_quality_analytics import fake_gateway


async def test_each_creating_post_creates_once_per_key(
        serve: Any, settings: Settings, database_url: str, auth: Any) -> None:
    gateway = await fake_gateway(serve, ["```\nDescribe {{ topic }} clearly.\n```"])
    settings.gateway_url, settings.database_url = gateway.url, database_url
    store = await serve(create_app("promptstore", settings))
    async with httpx.AsyncClient(base_url=store.url + "/api/v1",
                                 headers=auth("prompts:*")) as http:
        content = {"name": "p", "content": "Write about {{ topic }}"}
        await created_once(http, "/prompts", content, {**content, "name": "q"}, "/prompts")
        draft = {"content": "Now about {{ topic }}", "state": "draft"}
        await created_once(http, "/prompts/p/versions", draft,
                           {**draft, "content": "{{ topic }}"}, "/prompts/p/versions")
        await created_once(http, "/prompts/p/fork", {"name": "f"}, {"name": "g"},
                           "/prompts")
        optimize = {"optimization_type": "clarity", "variations": 1}
        await created_once(http, "/optimization/prompts/p/optimize", optimize,
                           {**optimize, "optimization_type": "brevity"},
                           "/prompts/p/versions")
        assert len(gateway.calls) == 1  # the replay asked no model
        variants = [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]
        test = await created_once(http, "/abtests",
                                  {"prompt": "p", "name": "t", "variants": variants},
                                  {"prompt": "p", "name": "u", "variants": variants},
                                  "/abtests")
        results = f"/abtests/{test['id']}/results"
        await created_once(http, f"/abtests/{test['id']}/outcomes",
                           {"version": 1, "success": True}, {"version": 1, "success": False},
                           results)
        assert [v["n"] for v in (await http.get(results)).json()["variants"]] == [1, 0]
