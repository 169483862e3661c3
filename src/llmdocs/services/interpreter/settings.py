"""The interpreter's own settings (`LLMDOCS_INTERPRETER_*`): the model and the waits."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class InterpreterSettings(BaseSettings):
    # LLMDOCS_INTERPRETER_URL / _PORT belong to the core settings: ignore what is not ours
    model_config = SettingsConfigDict(env_prefix="LLMDOCS_INTERPRETER_", env_file=".env",
                                      extra="ignore")

    use_model: bool = True  # ask the model when the rules cannot tell the intent
    model_tokens: int = 48
    sync_timeout_seconds: float = 900.0  # a synchronous request waits this long at most
    # finished executions (queries and answers) are deleted this long after (0: kept)
    execution_retention_days: float = Field(90.0, ge=0)
