"""The orchestrator's own settings (`LLMDOCS_ORCHESTRATOR_*`): what a tool call to a
third-party service may carry. llmdocs' own tokens never go there; only what the
operator configures for that service."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class OrchestratorSettings(BaseSettings):
    # LLMDOCS_ORCHESTRATOR_URL / _PORT belong to the core settings: ignore what is not ours
    model_config = SettingsConfigDict(env_prefix="LLMDOCS_ORCHESTRATOR_", env_file=".env",
                                      extra="ignore")

    # registered service name → headers its tool calls carry, as JSON:
    # {"weather": {"X-Api-Key": "..."}}
    tool_credentials: dict[str, dict[str, SecretStr]] = {}
    # registered service names whose tool calls carry the caller's own bearer token
    forward_caller_token: list[str] = []

    def headers_for(self, service: str) -> dict[str, str]:
        """The credentials configured for `service`'s tool calls."""
        return {name: value.get_secret_value()
                for name, value in self.tool_credentials.get(service, {}).items()}
