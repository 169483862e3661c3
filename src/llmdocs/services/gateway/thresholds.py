"""`llmdocs.budget.threshold` events: a budget's spend crossing 80% of its limit, and the
budget exhausted (its spend reached the limit, or a call was refused for want of it), so
the notification service can tell whoever watches the budget."""

from __future__ import annotations

from cachetools import TTLCache

from llmdocs.core.events import EventBus, make_event

BUDGET_THRESHOLD = "llmdocs.budget.threshold"
WARN_PERCENT = 80
FULL_PERCENT = 100


class BudgetAlerts:
    """Announces each crossing once: a counter only grows within its window, so exactly
    one settle sees it pass a mark; refusals repeat, so each is announced once per window
    and process (the notification rule keeps one alert across replicas)."""

    def __init__(self, events: EventBus | None) -> None:
        self.events = events
        self._refused: TTLCache[tuple[str, str, str], bool] = TTLCache(maxsize=10_000,
                                                                       ttl=3_600)

    async def settled(self, scope: str, subject: str, window: str, limit: int,
                      after: int, spent: int) -> None:
        """After a settle took the window's spend from `after - spent` to `after`."""
        before = after - spent
        for percent in (WARN_PERCENT, FULL_PERCENT):
            mark = limit * percent // 100
            if before < mark <= after:
                await self._announce(scope, subject, window, limit, after, percent)

    async def refused(self, scope: str, subject: str, window: str, limit: int) -> None:
        """A call the budget could not cover: it is exhausted for calls of that size."""
        key = (scope, subject, window)
        if key in self._refused:
            return
        self._refused[key] = True
        await self._announce(scope, subject, window, limit, None, FULL_PERCENT)

    async def _announce(self, scope: str, subject: str, window: str, limit: int,
                        spent: int | None, percent: int) -> None:
        if self.events is None:
            return
        await self.events.publish(make_event("gateway", BUDGET_THRESHOLD, {
            "scope": scope, "subject": subject, "window": window, "percent": percent,
            "limit_usd": limit / 1e6,
            "spent_usd": None if spent is None else spent / 1e6,
            "refused": spent is None}, subject=f"{scope}:{subject}"))
