"""The notification service's own settings (`LLMDOCS_NOTIFICATION_*`)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotificationSettings(BaseSettings):
    # LLMDOCS_NOTIFICATION_URL / _PORT belong to the core settings: ignore what is not ours
    model_config = SettingsConfigDict(env_prefix="LLMDOCS_NOTIFICATION_", env_file=".env",
                                      extra="ignore")

    consume_events: bool = True  # turn bus events into deliveries
    send: bool = True  # run the sender (a replica may only consume)
    max_attempts: int = Field(8, ge=1, le=100)  # then the delivery is a dead letter
    backoff_seconds: float = Field(2.0, gt=0)  # before the 2nd attempt, then doubling…
    backoff_max_seconds: float = Field(3600.0, gt=0)  # …up to this
    jitter: float = Field(0.2, ge=0, le=1)  # ± this share of each wait
    pause_after_failures: int = Field(20, ge=1)  # failed attempts in a row pause a channel
    send_timeout_seconds: float = Field(10.0, gt=0)  # one webhook request
    # a crashed sender's deliveries wait this long; longer than a send, or a slow send
    # would be taken over and sent twice while it still runs
    lease_seconds: float = Field(60.0, gt=0)
    poll_seconds: float = Field(1.0, gt=0)  # how often due retries are looked for
    tick_seconds: float = Field(5.0, gt=0)  # how often time-based rules are asked
    concurrency: int = Field(16, ge=1, le=256)  # sends in flight per replica
    max_body_bytes: int = Field(64 * 1024, ge=1024)  # a notification's JSON at most
    # delivered deliveries (and their attempts) and read inbox items older than this are
    # forgotten; dead ones stay for a replay until their subscription is removed
    retention_days: float = Field(30.0, gt=0)
    retention_interval_seconds: float = Field(3600.0, gt=0)

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> Self:
        if self.lease_seconds <= self.send_timeout_seconds:
            raise ValueError("LLMDOCS_NOTIFICATION_LEASE_SECONDS must be more than "
                             "LLMDOCS_NOTIFICATION_SEND_TIMEOUT_SECONDS")
        return self
