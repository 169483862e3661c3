"""Providers behind one interface; `build()` makes one from its configuration."""

from __future__ import annotations

from llmdocs.services.gateway.providers.base import Provider
from llmdocs.services.gateway.settings import GatewaySettings, ProviderConfig


def build(config: ProviderConfig, settings: GatewaySettings) -> Provider:
    """Import only what the provider's kind needs (boto3 is an optional extra)."""
    timeout = config.timeout_seconds or settings.timeout_seconds
    if config.kind == "local":
        from llmdocs.services.gateway.providers.local import LocalProvider

        return LocalProvider(config, timeout, n_ctx=settings.local_n_ctx,
                             threads=settings.local_threads, extra=settings.local_extra_buffers)
    if config.kind == "openai":
        from llmdocs.services.gateway.providers.openai import OpenAIProvider

        return OpenAIProvider(config, timeout)
    if config.kind == "ollama":
        from llmdocs.services.gateway.providers.ollama import OllamaProvider

        return OllamaProvider(config, timeout)
    if config.kind == "anthropic":
        from llmdocs.services.gateway.providers.anthropic import AnthropicProvider

        return AnthropicProvider(config, timeout)
    from llmdocs.services.gateway.providers.bedrock import BedrockProvider

    return BedrockProvider(config, timeout)
