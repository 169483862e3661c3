"""One settings object for the whole ecosystem, read from `LLMDOCS_*` variables and `.env`."""

from __future__ import annotations

import secrets
from functools import cached_property
from ipaddress import ip_network
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    IPvAnyNetwork,
    NonNegativeInt,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from llmdocs.core import crypto

DEFAULT_PORTS: dict[str, int] = {
    "orchestrator": 5099,
    "gateway": 5055,
    "discovery": 5045,
    "docstore": 5087,
    "promptstore": 5110,
    "interpreter": 5120,
    "logcollector": 5040,
    "analysis": 5020,
    "notification": 5130,
    "web": 3000,
}

# link-local: where clouds serve instance metadata and credentials to whoever asks
LINK_LOCAL = (ip_network("169.254.0.0/16"), ip_network("fe80::/10"))

# Kubernetes' service links (and docker's legacy links) set <SERVICE>_PORT=tcp://ip:port
SERVICE_LINK_SCHEMES = ("tcp://", "udp://", "sctp://")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LLMDOCS_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        populate_by_name=True,  # a field with another name in the environment (aliases)
    )

    data_dir: Path = Path(".llmdocs")
    database_url: str = ""
    # the database password apart from the URL, which this encodes: any character works
    database_password: SecretStr | None = None
    events_url: str = ""
    cache_url: str = ""
    events_stream: str = "llmdocs.events"

    host: str = "127.0.0.1"
    public_host: str = "127.0.0.1"
    orchestrator_port: int = DEFAULT_PORTS["orchestrator"]
    gateway_port: int = DEFAULT_PORTS["gateway"]
    discovery_port: int = DEFAULT_PORTS["discovery"]
    docstore_port: int = DEFAULT_PORTS["docstore"]
    promptstore_port: int = DEFAULT_PORTS["promptstore"]
    interpreter_port: int = DEFAULT_PORTS["interpreter"]
    logcollector_port: int = DEFAULT_PORTS["logcollector"]
    analysis_port: int = DEFAULT_PORTS["analysis"]
    notification_port: int = DEFAULT_PORTS["notification"]
    web_port: int = DEFAULT_PORTS["web"]
    orchestrator_url: str = ""
    gateway_url: str = ""
    discovery_url: str = ""
    docstore_url: str = ""
    promptstore_url: str = ""
    interpreter_url: str = ""
    logcollector_url: str = ""
    analysis_url: str = ""
    notification_url: str = ""
    web_url: str = ""

    jwt_secret: SecretStr | None = None
    # encryption at rest (llmdocs.core.crypto): a JSON object of key id → base64 of 32
    # bytes (the last encrypts, all decrypt), or the path of a file holding one
    encryption_keys: SecretStr | None = None
    token: SecretStr | None = None  # the CLI's access token
    jwt_issuer: str = "llmdocs"
    jwt_audience: str = "llmdocs"
    token_ttl_seconds: int = 3600
    # the role every signed-in user has in the `default` space ("none" closes it to
    # non-members), and how long a service keeps a caller's memberships (core.spaces)
    spaces_default_role: Literal["viewer", "editor", "none"] = "editor"
    spaces_cache_seconds: float = Field(5.0, ge=0.0)
    service_token_ttl_seconds: int = 300
    # roles added to the built-in ones or replacing them: {"role": ["scope", ...]}
    roles: dict[str, list[str]] = Field(default_factory=dict)
    # sign-in through an identity provider (llmdocs.core.oidc): its issuer URL and the
    # audience its access tokens name; where the roles are and how its names map to ours
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_roles_claim: str = "roles"
    oidc_role_map: dict[str, str] = Field(default_factory=dict)
    oidc_jwks_refresh_seconds: float = 60.0  # the least time between two key fetches

    # per-principal rate limits of every service (core.ratelimit; README "Rate limits"):
    # a user's requests a minute to one service, how many of them at once (0: as many as
    # a minute's), a service's own (0: none), refused tokens a minute per client address;
    # 0 turns a limit off. LLMDOCS_RATE_LIMIT_SERVICES='{"gateway": 600}': per service
    rate_limit_per_minute: int = Field(6000, ge=0)
    rate_limit_burst: int = Field(0, ge=0)
    rate_limit_service_per_minute: int = Field(0, ge=0)
    rate_limit_failures_per_minute: int = Field(600, ge=0)
    rate_limit_services: dict[str, NonNegativeInt] = Field(default_factory=dict)

    # mutual TLS (llmdocs.core.tls): a directory `llmdocs certs init` wrote, each service
    # using its own pair; or one pair and the CA bundle, for a process of one service
    tls_dir: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None

    db_pool_size: int = 10
    db_max_overflow: int = 20
    cache_ttl_seconds: float = 30.0
    cache_max_entries: int = 10_000  # in-process cache, per service (Redis holds more)
    cache_max_bytes: int = 32 * 2**20

    event_redelivery_seconds: float = 30.0
    event_max_deliveries: int = 5
    spool_flush_seconds: float = 2.0
    # the bus forgets events older than this (the log-collector keeps them); 0 keeps all
    event_retention_seconds: float = 7 * 86400
    # how often each service deletes what its retention settings say is due (0: never)
    retention_interval_seconds: float = Field(3600.0, ge=0)

    inprocess_calls: bool = True  # embedded: call services in-process, not via sockets
    http_timeout_seconds: float = 10.0
    http_retries: int = 3
    health_timeout_seconds: float = 2.0
    # no fetch of a user-supplied address (specs, health checks, tool calls) goes to these
    # (llmdocs.core.fetch); add private ranges where users must not reach internal
    # services. LLMDOCS_DISCOVERY_BLOCKED_NETWORKS is its older name.
    blocked_networks: list[IPvAnyNetwork] = Field(
        default_factory=lambda: list(LINK_LOCAL),
        validation_alias=AliasChoices("LLMDOCS_BLOCKED_NETWORKS",
                                      "LLMDOCS_DISCOVERY_BLOCKED_NETWORKS"))

    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    # logs shipped through the bus to the log-collector: from this level ("off": none),
    # and this fraction of info and debug records (whole requests at a time)
    log_ship_level: Literal["debug", "info", "warning", "error", "critical", "off"] = "info"
    log_ship_sample: float = Field(1.0, ge=0.0, le=1.0)
    # every service's audit records (writes, guarded reads, denials, admin actions)
    audit_enabled: bool = True
    otel_exporter: Literal["none", "otlp", "console"] = "none"
    otel_endpoint: str = ""

    @field_validator("rate_limit_services")
    @classmethod
    def _known_services(cls, value: dict[str, int]) -> dict[str, int]:
        """A misspelt service would leave its users on the default limit, unnoticed."""
        unknown = sorted(set(value) - set(DEFAULT_PORTS))
        if unknown:
            raise ValueError(f"no service is named {', '.join(unknown)}; the services are "
                             f"{', '.join(DEFAULT_PORTS)}")
        return value

    @field_validator("log_ship_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator(*(f"{key}_port" for key in DEFAULT_PORTS), mode="before")
    @classmethod
    def _not_a_service_link(cls, value: object, info: ValidationInfo) -> object:
        """Refuse a link address where a port belongs: starting on a default port instead
        would hide that the pod's environment is not the one its operator wrote."""
        if isinstance(value, str) and value.lower().startswith(SERVICE_LINK_SCHEMES):
            variable = f"LLMDOCS_{(info.field_name or '').upper()}"
            service = variable.removesuffix("_PORT").lower().replace("_", "-")
            raise ValueError(
                f"{variable}={value!r} is not a port but a service link, which Kubernetes "
                f"sets for a Service named {service} in the pod's namespace; set "
                f"enableServiceLinks: false in the pod spec (the llmdocs chart does) or "
                f"give the release another name")
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'llmdocs.db'}"
        pair = (self.tls_cert, self.tls_key, self.tls_ca)
        if self.tls_dir is None and any(pair) and not all(pair):
            raise ValueError("LLMDOCS_TLS_CERT, LLMDOCS_TLS_KEY and LLMDOCS_TLS_CA go "
                             "together (or set LLMDOCS_TLS_DIR)")
        if self.database_password is not None:
            self.database_url = make_url(self.database_url).set(
                password=self.database_password.get_secret_value()
            ).render_as_string(hide_password=False)
        return self

    @model_validator(mode="after")
    def _oidc_audience_given(self) -> Settings:
        """An identity provider's tokens are for many applications: without the
        audience, one meant for another would be taken as meant for llmdocs."""
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError("LLMDOCS_OIDC_ISSUER needs LLMDOCS_OIDC_AUDIENCE: the audience "
                             "(aud) the identity provider puts in tokens for llmdocs")
        return self

    @field_validator("encryption_keys")
    @classmethod
    def _key_ring_valid(cls, value: SecretStr | None) -> SecretStr | None:
        """A malformed ring stops the start: data written meanwhile would be plaintext."""
        if value is not None:
            crypto.parse_ring(value.get_secret_value())
        return value

    @property
    def tls(self) -> bool:
        """Whether services serve HTTPS only and call each other with certificates."""
        return self.tls_dir is not None or self.tls_cert is not None

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite")

    def waiting_up_to(self, seconds: float) -> Settings:
        """These settings for calls that may take `seconds` (a model's answer, a long
        poll): the HTTP timeout is at least that."""
        return self.model_copy(update={"http_timeout_seconds": max(
            self.http_timeout_seconds, seconds)})

    def port_for(self, service: str) -> int:
        port: int = getattr(self, f"{service}_port")
        return port

    def urls_for(self, service: str) -> list[str]:
        """Where a service's replicas answer: its configured URLs (comma-separated, for
        clients to balance over), else the local default port."""
        configured: str = getattr(self, f"{service}_url")
        urls = [url.strip().rstrip("/") for url in configured.split(",") if url.strip()]
        urls = urls or [f"http://{self.public_host}:{self.port_for(service)}"]
        if self.tls:  # every service serves HTTPS only: an http URL would never answer
            urls = [f"https://{url[len('http://'):]}" if url.startswith("http://") else url
                    for url in urls]
        return urls

    def url_for(self, service: str) -> str:
        """Where a service answers, one address (the first of several): what it
        registers, links to, and is probed at."""
        return self.urls_for(service)[0]

    @cached_property
    def signing_key(self) -> str:
        """The JWT secret; embedded mode makes one once and keeps it in the data dir."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()


    @cached_property
    def data_ring(self) -> crypto.KeyRing | None:
        """The ring encrypting stored data, when one is configured (else plaintext)."""
        if self.encryption_keys is None:
            return None
        return crypto.KeyRing.from_value(self.encryption_keys.get_secret_value())

    @cached_property
    def secrets_ring(self) -> crypto.KeyRing:
        """The ring for secrets encrypted always (webhook, Slack and SMTP secrets): the
        configured one, else embedded mode makes one into the data dir and distributed
        mode derives one from the JWT secret every replica shares. Once a ring is set,
        that key still opens what it sealed before."""
        if self.encryption_keys is None:
            return crypto.KeyRing(self.secrets_fallback)
        return crypto.KeyRing.from_value(self.encryption_keys.get_secret_value(),
                                         self.secrets_fallback)

    @property
    def secrets_fallback(self) -> dict[str, bytes]:
        """The secrets key used without a ring (kept to open what it sealed)."""
        return (crypto.generated_keys(self.data_dir, create=self.encryption_keys is None)
                if self.embedded else crypto.derived_keys(self.signing_key))

def get_settings() -> Settings:
    return Settings()


SERVICE_NAMES: tuple[str, ...] = tuple(DEFAULT_PORTS)
