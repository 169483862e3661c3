"""`llmdocs compliance report` against an ecosystem on real HTTP: the JSON shape, an
open route caught by the anonymous probe, development secrets flagged in distributed
mode, and the Markdown and PDF forms."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException
from pydantic import SecretStr
from typer.testing import CliRunner

from ecosystem import NEEDED, token
from llmdocs.cli import app as cli_app
from llmdocs.compliance import Control, Report, build_report, markdown, pdf
from llmdocs.compliance.settings import (
    ComplianceEnvironment,
    encryption_control,
    secrets_control,
)
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.services import create_app

CONTROLS = ["tls", "anonymous", "secrets", "encryption", "audit", "retention", "backups",
            "dependencies"]


async def test_json_report_of_a_running_ecosystem(eco: Settings, serve: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    await serve(create_app("logcollector", eco), port=eco.port_for("logcollector"))
    for key in SERVICE_NAMES:  # the CLI finds the services where the environment says
        monkeypatch.setenv(f"LLMDOCS_{key.upper()}_PORT", str(eco.port_for(key)))
    monkeypatch.setenv("LLMDOCS_DATA_DIR", str(eco.data_dir))
    monkeypatch.setenv("LLMDOCS_JWT_SECRET", eco.signing_key)
    monkeypatch.setenv("LLMDOCS_GATEWAY_USAGE_RETENTION_DAYS", "0")
    result = await asyncio.to_thread(
        CliRunner().invoke, cli_app,
        ["compliance", "report", "--format", "json", "--no-dependency-scan"])
    report = json.loads(result.output)
    assert list(report) == ["controls"]
    assert [c["id"] for c in report["controls"]] == CONTROLS
    for control in report["controls"]:
        assert set(control) == {"id", "title", "status", "evidence"}
        assert control["status"] in {"pass", "fail", "warn"} and control["evidence"]
    status = {c["id"]: c["status"] for c in report["controls"]}
    evidence = {c["id"]: c["evidence"] for c in report["controls"]}
    # loopback plain HTTP: a failed control, so exit 1
    assert status["tls"] == "fail" and result.exit_code == 1
    assert "plain HTTP" in evidence["tls"] and "not reachable" in evidence["tls"]
    assert status["anonymous"] == "pass", evidence["anonymous"]
    assert all(key in evidence["anonymous"] for key in (*NEEDED, "logcollector"))
    assert status["secrets"] == "pass" and "embedded" in evidence["secrets"]
    assert status["encryption"] == "fail"
    # the log-collector's own chain, of the audit records the probes themselves made
    assert status["audit"] == "pass"
    assert evidence["audit"].startswith('GET /audit/verify -> 200: {"intact":true')
    assert status["retention"] == "warn"
    assert "kept forever: LLMDOCS_GATEWAY_USAGE_RETENTION_DAYS" in evidence["retention"]
    assert status["backups"] == "warn"
    assert evidence["dependencies"] == "scan skipped (--no-dependency-scan)"
    table = await asyncio.to_thread(
        CliRunner().invoke, cli_app, ["compliance", "report", "--no-dependency-scan"])
    rows = [line for line in table.output.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(CONTROLS)  # one line a row: never wrapped
    assert rows[1].startswith("| tls | TLS") and "| FAIL |" in rows[1]


async def test_a_route_open_to_anonymous_callers_is_caught(settings: Settings,
                                                           serve: Any) -> None:
    app = create_app("docstore", settings)

    async def leak(item: str) -> dict[str, str]:
        return {"item": item}

    app.add_api_route("/leak/{item}", leak, methods=["GET"])  # no auth dependency
    running = await serve(app)
    eco = settings.model_copy(update={"docstore_url": running.url})
    report = await build_report(eco, token(eco), lock=None, services=("docstore",))
    anonymous = next(c for c in report.controls if c.id == "anonymous")
    assert anonymous.status == "fail"
    assert anonymous.evidence.startswith("1 of ")
    assert "docstore GET /leak/{item} -> 200" in anonymous.evidence
    assert report.failed


@pytest.mark.parametrize(("secret", "why"), [
    (None, "LLMDOCS_JWT_SECRET is unset"),
    ("c" * 48, "only 1 distinct characters"),
    ("change-me-to-a-long-random-string", "a known example value"),
    ("short-but-random", "16 characters"),
])
def test_development_secrets_fail_in_distributed_mode(secret: str | None, why: str) -> None:
    distributed = Settings(database_url="postgresql+asyncpg://llmdocs@db/llmdocs",
                           jwt_secret=SecretStr(secret) if secret else None)
    control = secrets_control(distributed)
    assert control.status == "fail" and why in control.evidence
    assert secret is None or secret not in control.evidence  # never the value itself


def test_a_random_secret_and_password_pass_in_distributed_mode() -> None:
    distributed = Settings(database_url="postgresql+asyncpg://llmdocs@db/llmdocs",
                           database_password=SecretStr("postgres"),
                           jwt_secret=SecretStr(secrets.token_urlsafe(48)))
    control = secrets_control(distributed)
    assert control.status == "fail" and control.evidence == (
        "the database password is a known example value")
    strong = distributed.model_copy(update={
        "database_url": "postgresql+asyncpg://llmdocs:Qx7-long-random@db/llmdocs"})
    assert secrets_control(strong).status == "pass"


def test_markdown_is_a_readable_table_and_pdf_renders() -> None:
    report = Report(controls=[
        Control(id="tls", title="TLS", status="fail", evidence="plain HTTP | at a\nb"),
        Control(id="backups", title="Backups", status="warn", evidence="unknown")])
    lines = markdown(report).splitlines()
    assert lines[0] == "# llmdocs compliance report"
    assert lines[2] == "0 pass, 1 fail, 1 warn"
    assert lines[4:] == ["| Control | Title | Status | Evidence |", "|---|---|---|---|",
                         "| tls | TLS | FAIL | plain HTTP \\| at a b |",
                         "| backups | Backups | WARN | unknown |"]
    assert pdf(report).startswith(b"%PDF")


def test_the_ci_scan_passes_saying_why_when_it_cannot_scan(tmp_path: Path) -> None:
    missing = tmp_path / "requirements.lock"
    done = subprocess.run([sys.executable, "-m", "llmdocs.compliance", str(missing)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"pip-audit {missing}: warn: no lock file at {missing}: pass --lock\n"


KEY = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(("keys", "in_use", "status", "evidence"), [
    ("", {}, "fail", "LLMDOCS_ENCRYPTION_KEYS is unset"),
    ('{"k1": "c2hvcnQ="}', {}, "fail", "keys k1 are not base64 of 32 bytes"),
    ("not json", {}, "fail", "cannot be read"),
    (json.dumps({"k1": KEY, "k2": KEY}), {"k1": 2, "k2": 5}, "pass",
     "well-formed keys: k1, k2 (k2 encrypts); every key in use is present: k1 (2), k2 (5)"),
    (json.dumps({"k2": KEY}), {"k0": 1, "k1": 2, "k2": 5}, "fail",
     "stored records need keys missing from the ring: k0, k1"),
    (json.dumps({"k1": KEY}), {"generated-1": 1, "k1": 1}, "pass", "generated-1 (1)"),
    (json.dumps({"k1": KEY}), "OperationalError: connection refused", "warn",
     "could not be read: OperationalError: connection refused"),
])
def test_encryption_keys_are_checked(keys: str, in_use: dict[str, int] | str, status: str,
                                     evidence: str) -> None:
    control = encryption_control(ComplianceEnvironment(encryption_keys=keys), in_use,
                                 kept={"generated-1"})
    assert control.status == status and evidence in control.evidence


async def test_keys_in_use_are_read_from_the_deployment(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key removed from the ring while records still need it fails the control, named."""
    ring = settings.data_dir / "ring.json"
    ring.parent.mkdir(parents=True)
    ring.write_text(json.dumps({"k1": base64.b64encode(b"1" * 32).decode()}))
    settings.encryption_keys = SecretStr(str(ring))
    docs = await serve(create_app("docstore", settings))
    settings = settings.model_copy(update={"docstore_url": docs.url})
    headers = {"Authorization": f"Bearer {token(settings, 'docs:write')}"}
    async with httpx.AsyncClient(base_url=docs.url, headers=headers, timeout=30) as http:
        assert (await http.post("/documents", json={"content": "sealed"})).status_code == 201
        assert (await http.post("/documents", files={"file": (
            "a.pdf", b"%PDF-1.4 sealed", "application/pdf")})).status_code == 201
    monkeypatch.setenv("LLMDOCS_ENCRYPTION_KEYS", str(ring))
    report = await build_report(settings, None, lock=None, services=("docstore",))
    control = next(c for c in report.controls if c.id == "encryption")
    assert control.status == "pass" and "k1 (2)" in control.evidence, control.evidence

    ring.write_text(json.dumps({"k2": base64.b64encode(b"2" * 32).decode()}))
    report = await build_report(settings, None, lock=None, services=("docstore",))
    control = next(c for c in report.controls if c.id == "encryption")
    assert control.status == "fail"
    assert control.evidence.startswith("stored records need keys missing from the ring: k1;")


@pytest.mark.parametrize(("intact", "status"), [(True, "pass"), (False, "fail")])
async def test_the_audit_chain_is_verified_by_the_log_collector(
        settings: Settings, serve: Any, intact: bool, status: str) -> None:
    """A log-collector stand-in speaking HTTP: its verify operation decides the control."""
    verifier = FastAPI()

    @verifier.get("/api/v1/audit/verify")
    async def verify(authorization: str = Header("")) -> dict[str, Any]:
        if authorization != "Bearer t0ken":
            raise HTTPException(401)
        return {"intact": intact, "chains": 1, "checked": 3}

    running = await serve(verifier)
    eco = settings.model_copy(update={"logcollector_url": running.url})
    report = await build_report(eco, "t0ken", lock=None, services=("logcollector",))
    audit = next(c for c in report.controls if c.id == "audit")
    assert audit.status == status
    assert audit.evidence.startswith("GET /api/v1/audit/verify -> 200: {")
    anonymous = next(c for c in report.controls if c.id == "anonymous")
    assert anonymous.status == "pass" and "all 1 non-public operations" in anonymous.evidence
    untokened = await build_report(eco, None, lock=None, services=("logcollector",))
    assert next(c for c in untokened.controls if c.id == "audit").evidence == (
        "no token to call GET /api/v1/audit/verify: set LLMDOCS_TOKEN (an auditor's)")
