"""Usage analytics: counters per prompt version, kept from the events the store
and the gateway publish."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from llmdocs.core.db import utcnow
from llmdocs.core.events.envelope import Event
from llmdocs.services.promptstore.models import (
    PromptUsage,
    SeenEvent,
)
from llmdocs.services.promptstore.prompts import PROMPT_USED, Prompts
from llmdocs.services.promptstore.schemas import (
    PromptAnalytics,
    VersionUsage,
)

_USAGE_COLUMNS = ("uses", "renders", "completions", "successes", "failures", "tokens",
                  "cost", "latency_ms_total")


def _usage_delta(event: Event) -> tuple[tuple[str, int], dict[str, float]] | None:
    """What one analytics event adds to its prompt version's usage; None if it names
    no prompt."""
    data = event.data
    prompt_id = data.get("prompt_id")
    if not isinstance(prompt_id, str) or not prompt_id:
        return None
    raw_version = data.get("version" if event.type == PROMPT_USED else "prompt_version")
    version = raw_version if isinstance(raw_version, int) else 0
    if event.type == PROMPT_USED:
        delta: dict[str, float] = {"uses": 1,
                                   "renders": int(data.get("rendered_hash") is not None)}
    else:
        ok = bool(data.get("success", True))
        delta = {"completions": 1, "successes": int(ok), "failures": int(not ok),
                 "tokens": _tokens(data.get("tokens")), "cost": _number(data.get("cost")),
                 "latency_ms_total": _number(data.get("latency_ms"))}
    return (prompt_id, version), delta


def _upsert(dialect: str) -> Any:
    """The dialect's INSERT with ON CONFLICT (both SQLite and PostgreSQL have it)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


class Analytics(Prompts):
    """Usage counted from events, and reported per prompt."""

    async def apply_events(self, events: list[Event]) -> None:
        """Add `prompt.used` and `llm.completed` events to the usage of their prompt
        versions, each exactly once per event id (the seen-id insert shares the
        transaction). A whole batch is one transaction: one row update per version."""
        deltas = {event.id: found for event in events if (found := _usage_delta(event))}
        if not deltas:
            return
        insert = _upsert(self.db.dialect)
        now = utcnow()
        async with self.db.transaction() as session:
            fresh = set(await session.scalars(
                insert(SeenEvent).values([{"event_id": i, "seen_at": now} for i in deltas])
                .on_conflict_do_nothing().returning(SeenEvent.event_id)))
            totals: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
            for event_id, (key, added) in deltas.items():
                if event_id in fresh:
                    totals[key].update(added)
            table = PromptUsage.__table__
            for (prompt_id, version), delta in totals.items():
                row = {**dict.fromkeys(_USAGE_COLUMNS, 0), **delta}
                await session.execute(
                    insert(PromptUsage)
                    .values(prompt_id=prompt_id, version=version, updated_at=now, **row)
                    .on_conflict_do_update(
                        index_elements=["prompt_id", "version"],
                        set_={"updated_at": now,
                              **{k: table.c[k] + v for k, v in delta.items()}}))

    async def analytics(self, ref: str) -> PromptAnalytics:
        async with self.db.session() as session:
            prompt = await self._prompt(session, ref)
            rows = list(await session.scalars(select(PromptUsage).where(
                PromptUsage.prompt_id == prompt.id).order_by(PromptUsage.version)))
        versions = [_usage(r.version, r.uses, r.renders, r.completions, r.successes,
                           r.failures, r.tokens, r.cost, r.latency_ms_total) for r in rows]
        totals = _usage(0, *(sum(getattr(r, k) for r in rows) for k in (
            "uses", "renders", "completions", "successes", "failures", "tokens", "cost",
            "latency_ms_total")))
        return PromptAnalytics(prompt_id=prompt.id, name=prompt.name, totals=totals,
                               versions=versions)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else 0.0


def _tokens(value: Any) -> int:
    """`tokens` as an int, or a dict with `total` (or its parts summed)."""
    if isinstance(value, dict):
        if "total" in value:
            return int(_number(value["total"]))
        return int(sum(_number(v) for v in value.values()))
    return int(_number(value))


def _usage(version: int, uses: int, renders: int, completions: int, successes: int,
           failures: int, tokens: int, cost: float, latency: float) -> VersionUsage:
    return VersionUsage(
        version=version, uses=uses, renders=renders, completions=completions,
        successes=successes, failures=failures,
        success_rate=successes / completions if completions else None, tokens=tokens,
        cost=cost, mean_latency_ms=latency / completions if completions else None)
