"""Which provider answers: explicit choice if allowed, else policy (sensitive → trusted
only; then cost preference and performance from the price table and measured latency),
with a circuit breaker per provider."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from llmdocs.services.gateway.pricing import PriceTable
from llmdocs.services.gateway.providers.base import Provider
from llmdocs.services.gateway.settings import GatewaySettings, Price

CostPreference = Literal["low", "balanced", "quality"]
Performance = Literal["fast", "normal"]


class RoutingError(Exception):
    """No acceptable provider: `status` and `field` say what to tell the caller."""

    def __init__(self, status: int, detail: str, field: str | None = None,
                 kind: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.kind = kind


@dataclass
class ProviderState:
    """A provider with its breaker and measured latency, updated by every real call."""

    provider: Provider
    failures_to_open: int
    cooldown: float
    failures: int = 0
    open_until: float = 0.0
    latency_ms: float | None = None  # moving average of successful calls
    last_error: str | None = None
    calls: int = 0

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def trusted(self) -> bool:
        return self.provider.config.is_trusted

    def available(self, now: float) -> bool:
        """Closed, or open but cooled down (half-open: the next call is the trial)."""
        return now >= self.open_until

    def succeeded(self, latency_ms: float) -> None:
        self.calls += 1
        self.failures, self.open_until, self.last_error = 0, 0.0, None
        self.latency_ms = (latency_ms if self.latency_ms is None
                           else 0.8 * self.latency_ms + 0.2 * latency_ms)

    def refused(self) -> None:
        """It answered, refusing the request: a call, but nothing against its health (or
        callers' bad requests would open its circuit for everyone)."""
        self.calls += 1

    def failed(self, error: str) -> None:
        self.calls += 1
        self.failures += 1
        self.last_error = error
        if self.failures >= self.failures_to_open:
            self.open_until = time.monotonic() + self.cooldown

    @property
    def state(self) -> str:
        if not self.open_until:
            return "closed"
        return "open" if time.monotonic() < self.open_until else "half-open"


@dataclass(frozen=True)
class Route:
    state: ProviderState
    upstream: str  # the provider's model name
    price: Price
    output_limit: int | None = None  # the most tokens it writes in one answer


@dataclass(frozen=True)
class Plan:
    alias: str
    routes: list[Route]
    reason: str
    max_price: Price = field(default_factory=Price)


class Router:
    def __init__(self, states: list[ProviderState], settings: GatewaySettings,
                 prices: PriceTable) -> None:
        self.states = {s.name: s for s in states}
        self.settings = settings
        self.prices = prices
        # the routes serving a model, and their top price, by (alias, pinned provider,
        # embeddings): they depend on the configuration alone, which does not change
        self._candidates: dict[tuple[str, str | None, bool], tuple[list[Route], Price]] = {}

    def aliases(self, embeddings: bool = False) -> dict[str, list[str]]:
        """Model alias → providers serving it."""
        out: dict[str, list[str]] = {}
        for state in self.states.values():
            models = (state.provider.config.embedding_models if embeddings
                      else state.provider.config.models)
            for alias in models:
                out.setdefault(alias, []).append(state.name)
        return out

    def split(self, model: str | None, provider: str | None) -> tuple[str, str | None]:
        """`provider/alias` pins the provider; an empty model is the default alias."""
        alias = model or self.settings.default_model
        if provider in (None, "", "auto") and "/" in alias:
            head, _, rest = alias.partition("/")
            if head in self.states:
                return rest, head
        return alias, None if provider in (None, "", "auto") else provider

    def plan(self, model: str | None, provider: str | None, *, sensitive: bool,
             cost: CostPreference = "balanced", performance: Performance = "normal",
             embeddings: bool = False, max_tokens: int | None = None,
             tokens_field: str = "max_tokens") -> Plan:
        """The routes for the call; `max_tokens` (asked as `tokens_field`) keeps those
        whose model writes that much."""
        alias, pinned = self.split(model, provider)
        candidates = self._candidates.get((alias, pinned, embeddings))
        if candidates is None:
            candidates = self._candidates[alias, pinned, embeddings] = self._routes(
                alias, pinned, embeddings)
        routes, top = candidates
        if max_tokens is not None:
            routes = _writing(routes, max_tokens, alias, tokens_field)
        reason = "explicit provider" if pinned else f"cost_preference={cost}"
        if sensitive:
            routes = [r for r in routes if r.state.trusted]
            if not routes:
                raise RoutingError(
                    422, "The request contains sensitive data and no trusted (local) "
                    f"provider serves model {alias!r}; it was not sent anywhere.",
                    kind="sensitive-refused")
            reason = "sensitive: trusted providers only" + (
                "; explicit provider" if pinned else "")
        now = time.monotonic()
        ready = [r for r in routes if r.state.available(now)]
        if not ready:
            names = ", ".join(r.state.name for r in routes)
            raise RoutingError(503, f"Every provider for {alias!r} is failing "
                               f"(circuit open: {names}); try again shortly.")
        if len(ready) > 1:
            ready.sort(key=_order(cost, performance))
        if performance == "fast" and not pinned:
            reason += ", performance=fast"
        if len(ready) < len(candidates[0]):
            top = _top(ready)
        return Plan(alias, ready, reason, top)

    def _routes(self, alias: str, pinned: str | None, embeddings: bool
                ) -> tuple[list[Route], Price]:
        if pinned is not None and pinned not in self.states:
            raise RoutingError(422, f"Unknown provider {pinned!r}; configured: "
                               f"{', '.join(sorted(self.states))}.", field="provider")
        routes = []
        for state in self.states.values():
            models = (state.provider.config.embedding_models if embeddings
                      else state.provider.config.models)
            if alias in models and (pinned is None or state.name == pinned):
                upstream = models[alias]
                routes.append(Route(state, upstream,
                                    self.prices.price(state.name, alias, upstream),
                                    state.provider.output_limit(alias)))
        if not routes:
            where = f" on provider {pinned!r}" if pinned else ""
            raise RoutingError(404, f"Unknown model {alias!r}{where}; see GET /v1/models.",
                               field="model")
        return routes, _top(routes)


def _writing(routes: list[Route], max_tokens: int, alias: str, tokens_field: str
             ) -> list[Route]:
    """The routes whose model may write `max_tokens`; none is the caller's error, which
    says the largest the model allows."""
    able = [r for r in routes if r.output_limit is None or max_tokens <= r.output_limit]
    if not able:
        most = max(r.output_limit or 0 for r in routes)
        detail = f"{tokens_field} may be at most {most} for model {alias!r}."
        raise RoutingError(422, detail, field=tokens_field)
    return able


def _top(routes: list[Route]) -> Price:
    """The highest input and output prices of the routes (maxima of validated prices: no
    need to validate them again)."""
    return Price.model_construct(input=max(r.price.input for r in routes),
                                 output=max(r.price.output for r in routes))


def _order(cost: CostPreference, performance: Performance) -> Callable[[Route], tuple[float, ...]]:
    def key(route: Route) -> tuple[float, ...]:
        total = route.price.input + route.price.output
        latency = route.state.latency_ms or 0.0  # unmeasured: try it, to measure it
        quality = float(route.state.provider.config.quality)
        by_cost = ((total,) if cost == "low" else (-quality, -total) if cost == "quality"
                   else (round(total, 0), -quality))
        if performance == "fast":
            return (latency, *by_cost)
        return (*by_cost, latency)

    return key
