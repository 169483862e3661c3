"""The log-collector's own settings (`LLMDOCS_LOGCOLLECTOR_*`): retention and tailing."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LogCollectorSettings(BaseSettings):
    # LLMDOCS_LOGCOLLECTOR_URL / _PORT belong to the core settings: ignore what is not ours
    model_config = SettingsConfigDict(env_prefix="LLMDOCS_LOGCOLLECTOR_", env_file=".env",
                                      extra="ignore")

    retention_days: float = 14.0  # log records older than this are deleted
    event_retention_days: float = 0.0  # events older than this (0: as logs)
    # audit records are kept longer than logs; retention removes whole chain prefixes
    audit_retention_days: float = Field(400.0, gt=0)
    max_logs: int = 5_000_000  # beyond this many log records the oldest are deleted
    max_events: int = 5_000_000  # likewise for events
    retention_interval_seconds: float = 300.0  # 0 turns the retention task off
    stream_poll_seconds: float = Field(0.5, gt=0)  # how often a live tail looks for records
    # a live tail ends after this long without a new record, and after the other in all;
    # its reader goes on with Last-Event-ID, as server-sent events readers do
    stream_idle_seconds: float = Field(300.0, gt=0)
    stream_max_seconds: float = Field(3600.0, gt=0)
    consume_events: bool = True  # keep every event of the bus (consumer group logcollector)
