"""Typed client of the prompt-store. Prompts are cached (stale-while-revalidate, then the
last good version, then a packaged seed) and rendered and A/B-assigned here, so a
prompt-store outage does not stop document generation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from llmdocs.core.client import ServiceClient, ServiceUnavailable, Unprocessable, UpstreamError
from llmdocs.services.promptstore import abtest
from llmdocs.services.promptstore.errors import Invalid
from llmdocs.services.promptstore.rendering import render
from llmdocs.services.promptstore.schemas import (
    AbResults,
    AbTestIn,
    AbTestOut,
    DiffOut,
    PromptAnalytics,
    PromptIn,
    PromptOut,
    PromptPage,
    Rendered,
    Resolved,
    SearchIn,
    Variable,
    VersionIn,
    VersionOut,
)

log = structlog.get_logger(__name__)
API = "/api/v1"
CacheKey = tuple[str, str | None, int | None]
OUTAGE = (ServiceUnavailable, UpstreamError)


@dataclass
class _Entry:
    value: Resolved
    fetched_at: float


class PromptStoreClient(ServiceClient):
    service = "promptstore"

    def __init__(self, base_url: str | Sequence[str], *, cache_ttl: float = 60.0,
                 fallback_to_seeds: bool = True, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self.cache_ttl = cache_ttl
        self.fallback_to_seeds = fallback_to_seeds
        self._cache: dict[CacheKey, _Entry] = {}
        self._refreshing: dict[CacheKey, asyncio.Task[None]] = {}

    # --- the hot path ----------------------------------------------------------------

    async def get(self, name: str, *, label: str | None = None, version: int | None = None,
                  ab_subject: str | None = None) -> Resolved:
        """The version to use, as the store would resolve it (label defaults to
        production; with `ab_subject` and a running A/B test, the subject's variant)."""
        resolved = await self._cached((name, label, version))
        ab = resolved.ab_test
        if ab is None or ab_subject is None or label is not None or version is not None:
            return resolved
        chosen = abtest.assign(ab.test_id, ab_subject,
                               [(int(v["version"]), float(v["weight"])) for v in ab.variants])
        variant = await self._cached((name, None, chosen))
        assignment = ab.model_copy(update={"variant": chosen})
        return variant.model_copy(update={"ab_test": assignment, "label": None})

    async def render(self, name: str, variables: dict[str, Any] | None = None, *,
                     label: str | None = None, version: int | None = None,
                     ab_subject: str | None = None) -> Rendered:
        """Render locally; bad values raise `Unprocessable` like the store's 422."""
        resolved = await self.get(name, label=label, version=version, ab_subject=ab_subject)
        try:
            return render(resolved, variables or {})
        except Invalid as exc:
            raise Unprocessable(self.service, 422, {"detail": exc.detail,
                                                    "errors": exc.errors}) from None

    async def record_outcome(self, test_id: str, version: int, *, subject: str | None = None,
                             success: bool | None = None, score: float | None = None,
                             latency_ms: float | None = None, cost: float | None = None
                             ) -> AbResults | None:
        """Record an A/B outcome; None (and a warning) when the store is unreachable,
        since losing one outcome must not fail the call that produced it."""
        body = {"version": version, "subject": subject, "success": success, "score": score,
                "latency_ms": latency_ms, "cost": cost}
        try:
            data = await self.create_json(f"{API}/abtests/{test_id}/outcomes", body)
        except OUTAGE as exc:
            log.warning("abtest outcome not recorded", test_id=test_id, error=str(exc))
            return None
        return AbResults.model_validate(data)

    async def _cached(self, key: CacheKey) -> Resolved:
        entry = self._cache.get(key)
        if entry is None:
            return await self._first_fetch(key)
        if time.monotonic() - entry.fetched_at >= self.cache_ttl and key not in self._refreshing:
            task = asyncio.create_task(self._refresh(key))
            self._refreshing[key] = task
            task.add_done_callback(lambda _t: self._refreshing.pop(key, None))
        return entry.value

    async def fetch(self, key: CacheKey) -> Resolved:
        """Ask the store, bypassing the cache (then cache the answer): a cold lookup."""
        name, label, version = key
        params = {k: v for k, v in (("label", label), ("version", version)) if v is not None}
        data = await self.get_json(f"{API}/prompts/by-name/{name}", params=params)
        resolved = Resolved.model_validate(data)
        self._cache[key] = _Entry(resolved, time.monotonic())
        return resolved

    async def _first_fetch(self, key: CacheKey) -> Resolved:
        try:
            return await self.fetch(key)
        except OUTAGE:
            seed = self._seed(key)
            if seed is None:
                raise
            log.warning("prompt-store unreachable: using the packaged seed", name=key[0])
            return seed

    async def _refresh(self, key: CacheKey) -> None:
        """Background refresh; on failure the last good version stays in use (and is
        retried after another TTL)."""
        try:
            await self.fetch(key)
        except Exception as exc:
            log.warning("prompt refresh failed: serving the last good version",
                        name=key[0], error=str(exc))
            entry = self._cache.get(key)
            if entry is not None:
                entry.fetched_at = time.monotonic()

    def _seed(self, key: CacheKey) -> Resolved | None:
        name, label, version = key
        if not self.fallback_to_seeds or version is not None or label not in (None,
                                                                              "production"):
            return None
        from llmdocs.services.promptstore.seeding import load_seeds
        from llmdocs.services.promptstore.templates import content_hash, variables_of

        for seed in load_seeds():
            if seed.name == name and isinstance(seed.content, str):
                variables = seed.variables if seed.variables is not None else [
                    Variable(name=n) for n in variables_of([("content", seed.content)])]
                return Resolved(prompt_id=f"seed:{name}", name=name, type=seed.type,
                                version=0, label="seed", content=seed.content,
                                variables=variables, config=seed.config, state="published",
                                content_hash=content_hash(seed.content))
        return None

    # --- management (CLI and tools) ---------------------------------------------------

    async def create(self, prompt: PromptIn) -> PromptOut:
        data = await self.create_json(f"{API}/prompts", prompt.model_dump(exclude_none=True))
        return PromptOut.model_validate(data)

    async def prompt(self, ref: str) -> PromptOut:
        return PromptOut.model_validate(await self.get_json(f"{API}/prompts/{ref}"))

    async def add_version(self, ref: str, version: VersionIn) -> VersionOut:
        data = await self.create_json(f"{API}/prompts/{ref}/versions",
                                      version.model_dump(exclude_none=True))
        return VersionOut.model_validate(data)

    async def history(self, ref: str) -> list[VersionOut]:
        data = await self.get_json(f"{API}/prompts/{ref}/versions")
        return [VersionOut.model_validate(v) for v in data]

    async def list_prompts(self, category: str | None = None, tag: str | None = None,
                   limit: int = 50, offset: int = 0) -> PromptPage:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        params.update({k: v for k, v in (("category", category), ("tag", tag)) if v})
        return PromptPage.model_validate(await self.get_json(f"{API}/prompts", params=params))

    async def search(self, query: SearchIn) -> PromptPage:
        data = await self.post_json(f"{API}/prompts/search", query.model_dump())
        return PromptPage.model_validate(data)

    async def diff(self, ref: str, from_version: int, to_version: int) -> DiffOut:
        data = await self.get_json(f"{API}/prompts/{ref}/diff",
                                   params={"from": from_version, "to": to_version})
        return DiffOut.model_validate(data)

    async def set_label(self, ref: str, label: str, version: int) -> PromptOut:
        response = await self.request("PUT", f"{API}/prompts/{ref}/labels/{label}",
                                      json={"version": version})
        return PromptOut.model_validate(response.json())

    async def render_remote(self, name: str, variables: dict[str, Any], *,
                            label: str | None = None, version: int | None = None) -> Rendered:
        """Render on the store (counted in its analytics as a render)."""
        data = await self.post_json(f"{API}/prompts/by-name/{name}/render", {
            "variables": variables, "label": label, "version": version})
        return Rendered.model_validate(data)

    async def create_test(self, test: AbTestIn) -> AbTestOut:
        return AbTestOut.model_validate(await self.create_json(f"{API}/abtests",
                                                               test.model_dump()))

    async def tests(self, prompt: str | None = None) -> list[AbTestOut]:
        """A/B tests, newest first; of one prompt (id or name) when given."""
        data = await self.get_json(f"{API}/abtests",
                                   params={"prompt": prompt} if prompt else None)
        return [AbTestOut.model_validate(t) for t in data]

    async def test_results(self, test_id: str) -> AbResults:
        return AbResults.model_validate(await self.get_json(f"{API}/abtests/{test_id}/results"))

    async def stop_test(self, test_id: str, promote: bool = False) -> AbResults:
        data = await self.post_json(f"{API}/abtests/{test_id}/stop",
                                    params={"promote": str(promote).lower()})
        return AbResults.model_validate(data)

    async def analytics(self, ref: str) -> PromptAnalytics:
        data = await self.get_json(f"{API}/analytics/prompts/{ref}")
        return PromptAnalytics.model_validate(data)
