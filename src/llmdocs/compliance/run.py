"""One report: the configuration's controls and the running services' probes."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy.exc import SQLAlchemyError

from llmdocs import keys
from llmdocs.compliance.dependencies import dependency_control
from llmdocs.compliance.probes import anonymous_control, audit_control, discover, tls_control
from llmdocs.compliance.report import Report
from llmdocs.compliance.settings import (
    ComplianceEnvironment,
    backups_control,
    encryption_control,
    retention_control,
    secrets_control,
)
from llmdocs.core import crypto
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.core.tls import client_context


async def _keys_in_use(settings: Settings, environment: ComplianceEnvironment
                       ) -> dict[str, int] | str:
    """Which keys the deployment's stored records and blobs need, or why that is unknown."""
    if not environment.encryption_keys:
        return {}
    try:
        return await keys.keys_in_use(settings)
    except (SQLAlchemyError, OSError, crypto.CryptoError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


async def build_report(settings: Settings, token: str | None, *, lock: Path | None,
                       services: tuple[str, ...] = SERVICE_NAMES) -> Report:
    """Check the deployment `settings` describe; `token` (if any) reads the audit verification,
    `lock` is scanned for vulnerable dependencies (None: not scanned)."""
    environment = ComplianceEnvironment()
    timeout = httpx.Timeout(settings.http_timeout_seconds,
                            connect=settings.health_timeout_seconds)
    # with mutual TLS, the CLI's certificate and the deployment's CA, as every client
    verify = client_context(settings, None) or True
    async with httpx.AsyncClient(timeout=timeout, verify=verify) as http:
        deployment = await discover(http, settings, services)
        controls = [
            await tls_control(http, deployment, settings),
            await anonymous_control(http, deployment),
            secrets_control(settings),
            encryption_control(environment, await _keys_in_use(settings, environment),
                               keys.secrets_key_ids(settings)),
            await audit_control(http, deployment, token),
            retention_control(settings),
            backups_control(),
            await dependency_control(lock),
        ]
    return Report(controls=controls)
