"""The orchestrator's own settings (`LLMDOCS_ORCHESTRATOR_*`): what a tool call to a
third-party service may carry (never llmdocs' own tokens), and the document workflow's
pace and limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
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
    # finished runs and their checkpoints are deleted this long after they ended (0: kept)
    run_retention_days: float = Field(90.0, ge=0)

    def headers_for(self, service: str) -> dict[str, str]:
        """The credentials configured for `service`'s tool calls."""
        return {name: value.get_secret_value()
                for name, value in self.tool_credentials.get(service, {}).items()}


class PrivacySettings(BaseSettings):
    """`LLMDOCS_PRIVACY_*`: what an erasure does with the documents its subject owns,
    unless the request says otherwise."""

    model_config = SettingsConfigDict(env_prefix="LLMDOCS_PRIVACY_", env_file=".env",
                                      extra="ignore")

    owned_documents: Literal["delete", "transfer"] = "delete"
    transfer_to: str | None = Field(None, min_length=1, max_length=200)  # who receives them

    @model_validator(mode="after")
    def _receiver_named(self) -> Self:
        if self.owned_documents == "transfer" and not self.transfer_to:
            raise ValueError("LLMDOCS_PRIVACY_OWNED_DOCUMENTS=transfer needs "
                             "LLMDOCS_PRIVACY_TRANSFER_TO: who receives the documents")
        return self


@dataclass
class DocgenSettings:
    max_revisions: int = 2
    prose_tokens: int = 96
    review_tokens: int = 64
    source_chars: int = 1200  # of sources shown to the model in one prompt
    write_concurrency: int = 8  # model calls of the write step in flight at once
    judge_model: str | None = None  # the gateway model that reviews drafts; None: no judge
    outage_seconds: float = 30.0  # how long a step waits out a dependency's outage


class WorkflowSettings(BaseSettings):
    """`LLMDOCS_WORKFLOW_*`: how runs are leased, written and reviewed."""

    model_config = SettingsConfigDict(env_prefix="LLMDOCS_WORKFLOW_", env_file=".env",
                                      extra="ignore")

    lease_seconds: float = 15.0  # a dead replica's runs are resumed after this
    max_revisions: int = 2
    prose_tokens: int = 96
    review_tokens: int = 64
    recursion_limit: int = 40
    write_concurrency: int = Field(8, ge=1)  # sections written at once, at most
    # the gateway model (alias) asked to judge each draft; unset, no draft is judged: the
    # small local model's scores say nothing, and a score nobody asked for is not shown
    judge_model: str | None = Field(None, min_length=1, max_length=200)
    # a completed run never resumes, so its checkpoints (about 70 KB a document on
    # SQLite) are deleted once its end is recorded; failed and cancelled runs keep theirs
    keep_checkpoints: bool = False
    # a step that meets a dependency's outage (a restart: a service, the database) calls
    # again for this long before the run fails as "unavailable"
    outage_seconds: float = Field(30.0, ge=0)
