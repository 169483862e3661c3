"""The analysis service's own settings (`LLMDOCS_ANALYSIS_*`); the spec bounds are the
discovery-agent's (`LLMDOCS_DISCOVERY_MAX_SPEC_BYTES` …), shared by every reader of specs."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AnalysisSettings(BaseSettings):
    # LLMDOCS_ANALYSIS_URL / _PORT belong to the core settings: ignore what is not ours
    model_config = SettingsConfigDict(env_prefix="LLMDOCS_ANALYSIS_", env_file=".env",
                                      extra="ignore")

    # regenerate a stale document (the interpreter's refresh) once its finding is stored
    regenerate: bool = True
    # how long one regeneration may take before its finding stays open, saying so
    regenerate_timeout_seconds: float = Field(900.0, gt=0)
    consume_events: bool = True  # watch the bus for new spec versions and registrations
