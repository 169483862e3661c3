"""The log-collector's own settings (`LLMDOCS_LOGCOLLECTOR_*`): retention and tailing."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class LogCollectorSettings(BaseSettings):
    # LLMDOCS_LOGCOLLECTOR_URL / _PORT belong to the core settings: ignore what is not ours
    model_config = SettingsConfigDict(env_prefix="LLMDOCS_LOGCOLLECTOR_", env_file=".env",
                                      extra="ignore")

    retention_days: float = 14.0  # records older than this are deleted
    max_logs: int = 5_000_000  # beyond this many log records the oldest are deleted
    max_events: int = 5_000_000  # likewise for events
    retention_interval_seconds: float = 300.0  # 0 turns the retention task off
    stream_poll_seconds: float = 0.5  # how often a live tail looks for new records
    consume_events: bool = True  # keep every event of the bus (consumer group logcollector)
