"""The price table: dollars per million tokens, by provider and model alias."""

from __future__ import annotations

from typing import Any

from llmdocs.services.gateway.settings import GatewaySettings, Price

# list prices of common models (USD per 1M tokens); configuration overrides them
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(input=2.5, output=10.0),
    "gpt-4o-mini": Price(input=0.15, output=0.6),
    "gpt-4.1": Price(input=2.0, output=8.0),
    "gpt-4.1-mini": Price(input=0.4, output=1.6),
    "claude-sonnet-4-0": Price(input=3.0, output=15.0),
    "claude-3-5-haiku-latest": Price(input=0.8, output=4.0),
    "anthropic.claude-3-haiku-20240307-v1:0": Price(input=0.25, output=1.25),
    "llama-3.1-8b-instant": Price(input=0.05, output=0.08),
}
FREE = Price()


def micros(price: Price, prompt_tokens: int, completion_tokens: int) -> int:
    """Cost in micro-USD (price is per million tokens, so this is exact arithmetic)."""
    return round(price.input * prompt_tokens + price.output * completion_tokens)


class PriceTable:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._by_provider = {p.name: p for p in settings.providers}

    def price(self, provider: str, alias: str, upstream: str) -> Price:
        """Most specific first: `provider/alias` in settings, the provider's own table,
        the alias in settings, the list price of the upstream model; local is free."""
        config = self._by_provider.get(provider)
        for found in (self.settings.prices.get(f"{provider}/{alias}"),
                      config.prices.get(alias) if config else None,
                      self.settings.prices.get(alias)):
            if found is not None:
                return found
        if config is not None and config.kind == "local":
            return FREE
        return DEFAULT_PRICES.get(upstream) or DEFAULT_PRICES.get(alias) or FREE

    def table(self) -> list[dict[str, Any]]:
        rows = []
        for config in self.settings.providers:
            for alias, upstream in sorted(config.models.items()):
                price = self.price(config.name, alias, upstream)
                rows.append({"provider": config.name, "model": alias,
                             "input_per_million": price.input,
                             "output_per_million": price.output})
        return rows
