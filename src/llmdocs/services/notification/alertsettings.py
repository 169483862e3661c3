"""The alert rules', grouping's and the Slack and email channels' settings
(`LLMDOCS_NOTIFICATION_*`, beside the engine's own in settings.py)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMDOCS_NOTIFICATION_", env_file=".env",
                                      extra="ignore")

    # a service unhealthy this long is an alert (0: at once; a blip shorter is not);
    # negative turns the rule off
    unhealthy_seconds: float = 60.0
    recovered: bool = True  # and a notice when an alerted service is healthy again
    run_failed: bool = True
    document_stale: bool = True
    breaking_change: bool = True
    budget_percents: list[int] = Field(default=[80, 100])  # []: off
    dead_letters: bool = True
    # repeats of one alert within this window go out as one summary at its end
    group_window_seconds: float = Field(300.0, ge=0)  # 0: never grouped
    # messages one channel (subscription) is sent per window at most; the excess waits for
    # the next window without counting an attempt (Slack takes about one a second)
    rate_limit: int = Field(60, ge=1)
    rate_window_seconds: int = Field(60, ge=1)
    # where a notification's link points: the web portal's pages for documents, runs,
    # services and usage
    portal_url: str = "http://localhost:3000"
    # email: the SMTP server every email subscription is sent through
    smtp_host: str = "localhost"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "llmdocs@localhost"
    smtp_tls: bool = False  # TLS from the first byte (port 465); else STARTTLS if offered
    smtp_require_tls: bool = False  # refuse to send in clear when STARTTLS is not offered
    smtp_ca_file: str = ""  # certificates to trust beside the system's (a private CA)
    # the domains email may go to ([]: any); else anyone who may subscribe can make the
    # server mail any address
    email_domains: list[str] = Field(default=[])
