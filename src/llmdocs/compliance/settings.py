"""Controls read from the configuration alone: secrets, encryption keys, retention,
backups. They read the environment (and `.env`) the report runs in, which must be the
deployment's: the evidence says which variables it saw, never their secret values."""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Collection, Mapping
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from llmdocs.compliance.report import Control
from llmdocs.core.config import Settings

MIN_SECRET = 32  # characters of an HS256 key: 192 bits of a random base64 string
FEW_CHARACTERS = 10  # distinct characters below which a secret is a test's ("c" * 48)
# what examples, tutorials and our own deploy files put where a secret belongs
KNOWN_VALUES = frozenset({"secret", "changeme", "change-me", "password", "test", "dev",
                          "development", "llmdocs", "postgres", "admin", "example",
                          "change-me-to-a-long-random-string"})


class ComplianceEnvironment(BaseSettings):
    """Settings other branches own, read by name so the report works before they land."""

    model_config = SettingsConfigDict(env_prefix="LLMDOCS_", env_file=".env", extra="ignore")

    encryption_keys: str = ""


def _weak(secret: str) -> str | None:
    """Why a secret is not fit for a deployment, or None."""
    if secret.lower() in KNOWN_VALUES or "change-me" in secret.lower():
        return "a known example value"
    if len(secret) < MIN_SECRET:
        return f"{len(secret)} characters (fewer than {MIN_SECRET})"
    if len(set(secret)) < FEW_CHARACTERS:
        return f"only {len(set(secret))} distinct characters, as test secrets have"
    return None


def secrets_control(settings: Settings) -> Control:
    """No default, example or data-dir-generated secret when services run apart."""
    title = "No default or development secrets in distributed mode"
    if settings.embedded:
        return Control(id="secrets", title=title, status="pass", evidence=(
            "embedded mode (SQLite, one machine): the JWT secret generated into the data "
            "dir is the intended one"))
    problems = []
    if settings.jwt_secret is None:
        problems.append("LLMDOCS_JWT_SECRET is unset: each service would generate its own "
                        f"into {settings.data_dir / 'jwt-secret'}")
    elif why := _weak(settings.jwt_secret.get_secret_value()):
        problems.append(f"LLMDOCS_JWT_SECRET is {why}")
    password = make_url(settings.database_url).password
    if password is not None and (why := _weak(str(password))) and \
            why == "a known example value":
        problems.append(f"the database password is {why}")
    if problems:
        return Control(id="secrets", title=title, status="fail", evidence="; ".join(problems))
    return Control(id="secrets", title=title, status="pass", evidence=(
        "LLMDOCS_JWT_SECRET is set, long and not a known or test value; the database "
        "password is not a known default"))


def _key_ring(raw: str) -> dict[str, str]:
    """The key ring: a JSON object, or a path to a file holding one."""
    text = raw.strip()
    if not text.startswith("{"):
        text = Path(text).read_text()
    ring = json.loads(text)
    if not isinstance(ring, dict) or not ring:
        raise ValueError("not a JSON object of key id to key")
    return {str(k): str(v) for k, v in ring.items()}


def encryption_control(environment: ComplianceEnvironment, in_use: Mapping[str, int] | str,
                       kept: Collection[str] = ()) -> Control:
    """Encryption at rest configured with well-formed keys, and every key a stored record
    or blob needs in the ring (`in_use`: key id → values needing it, or why it could not
    be read; `kept`: the secrets key the services keep besides the ring)."""
    title = "Encryption at rest on, every key present and well-formed"
    if not environment.encryption_keys:
        return Control(id="encryption", title=title, status="fail", evidence=(
            "LLMDOCS_ENCRYPTION_KEYS is unset: contents are stored in plaintext"))
    try:
        ring = _key_ring(environment.encryption_keys)
        bad = [key_id for key_id, key in ring.items()
               if len(base64.b64decode(key, validate=True)) != 32]
    except (OSError, ValueError, binascii.Error) as exc:
        return Control(id="encryption", title=title, status="fail",
                       evidence=f"LLMDOCS_ENCRYPTION_KEYS cannot be read: {exc}")
    if bad:
        return Control(id="encryption", title=title, status="fail", evidence=(
            f"keys {', '.join(bad)} are not base64 of 32 bytes"))
    keys = f"well-formed keys: {', '.join(ring)} ({list(ring)[-1]} encrypts)"
    if isinstance(in_use, str):
        return Control(id="encryption", title=title, status="warn", evidence=(
            f"{keys}; the keys stored records need could not be read: {in_use}"))
    used = ", ".join(f"{key_id} ({count})" for key_id, count in sorted(in_use.items()))
    missing = sorted(set(in_use) - set(ring) - set(kept))
    if missing:
        return Control(id="encryption", title=title, status="fail", evidence=(
            f"stored records need keys missing from the ring: {', '.join(missing)}; "
            f"{keys}; in use (values): {used}"))
    return Control(id="encryption", title=title, status="pass", evidence=(
        f"{keys}; every key in use is present: {used or 'none yet'}"))


def retention_control(settings: Settings) -> Control:
    """Every data class has a retention period, stated as configured."""
    from llmdocs.services.gateway.settings import GatewaySettings
    from llmdocs.services.interpreter.settings import InterpreterSettings
    from llmdocs.services.logcollector.settings import LogCollectorSettings
    from llmdocs.services.orchestrator.settings import OrchestratorSettings

    logs = LogCollectorSettings()
    days = {
        "LLMDOCS_INTERPRETER_EXECUTION_RETENTION_DAYS":
            InterpreterSettings().execution_retention_days,
        "LLMDOCS_ORCHESTRATOR_RUN_RETENTION_DAYS": OrchestratorSettings().run_retention_days,
        "LLMDOCS_GATEWAY_USAGE_RETENTION_DAYS": GatewaySettings().usage_retention_days,
        "LLMDOCS_LOGCOLLECTOR_RETENTION_DAYS": logs.retention_days,
        "LLMDOCS_LOGCOLLECTOR_EVENT_RETENTION_DAYS":
            logs.event_retention_days or logs.retention_days,
        "LLMDOCS_EVENT_RETENTION_SECONDS (bus, in days)":
            settings.event_retention_seconds / 86400,
        "LLMDOCS_LOGCOLLECTOR_AUDIT_RETENTION_DAYS": logs.audit_retention_days,
    }
    stated = [f"{name}={value:g}" for name, value in days.items()]
    forever = [name for name, value in days.items() if not value]
    off = settings.retention_interval_seconds == 0 or logs.retention_interval_seconds == 0
    status = "warn" if forever or off else "pass"
    notes = ([f"kept forever: {', '.join(forever)}"] if forever else []) + \
            (["a retention task is off (an interval of 0)"] if off else [])
    return Control(id="retention", title="Retention set for every data class",
                   status=status, evidence="; ".join(notes + stated))


def backups_control() -> Control:
    """Backups are the database operator's: say whether any are configured here."""
    names = sorted(name for name in os.environ if name.startswith("LLMDOCS_BACKUP_"))
    title = "Database backups configured"
    if names:
        return Control(id="backups", title=title, status="pass",
                       evidence=f"configured: {', '.join(names)}")
    return Control(id="backups", title=title, status="warn", evidence=(
        "unknown: no LLMDOCS_BACKUP_* setting; llmdocs does not back up its database, "
        "so back up PostgreSQL (or the SQLite data dir) by other means and say so here"))
