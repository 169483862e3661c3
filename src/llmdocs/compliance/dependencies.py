"""The dependency scan: pip-audit on the lock file, when it and the vulnerability
service can be reached; otherwise a warning saying why."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

from llmdocs.compliance.report import Control

SCAN_SECONDS = 300.0  # pip-audit asks the vulnerability service once per package
TITLE = "Dependency scan (pip-audit on the lock) finds no known vulnerability"


def _command(lock: Path) -> list[str]:
    """pip-audit beside this Python (the dev extra installs it), else on the PATH."""
    beside = Path(sys.executable).with_name("pip-audit")
    program = str(beside) if beside.exists() else shutil.which("pip-audit") or ""
    # the lock pins every package: no resolver, no virtual environment to build
    return [program, "--requirement", str(lock), "--no-deps", "--disable-pip",
            "--format", "json", "--progress-spinner", "off"]


def _findings(output: str) -> tuple[list[str], list[str], int]:
    """The vulnerable packages, those not audited (with why) and how many there were."""
    report = json.loads(output)
    packages = report.get("dependencies", report) if isinstance(report, dict) else report
    vulnerable = [f"{p['name']} {p['version']}: {', '.join(v['id'] for v in p['vulns'])}"
                  for p in packages if p.get("vulns")]
    return vulnerable, [p["skip_reason"] for p in packages if p.get("skip_reason")], \
        len(packages)


def _ready(lock: Path | None) -> list[str] | Control:
    """The command that scans `lock`, or the warning saying why none can."""
    if lock is None:
        return Control(id="dependencies", title=TITLE, status="warn",
                       evidence="scan skipped (--no-dependency-scan)")
    if not lock.is_file():
        return Control(id="dependencies", title=TITLE, status="warn",
                       evidence=f"no lock file at {lock}: pass --lock")
    command = _command(lock)
    if not command[0]:
        return Control(id="dependencies", title=TITLE, status="warn", evidence=(
            "pip-audit is not installed (it comes with the dev extra)"))
    return command


async def dependency_control(lock: Path | None) -> Control:
    """Run pip-audit on `lock`; None skips the scan (said in the evidence)."""
    command = _ready(lock)
    if isinstance(command, Control):
        return command
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), SCAN_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        return Control(id="dependencies", title=TITLE, status="warn",
                       evidence=f"pip-audit took longer than {SCAN_SECONDS:g} s")
    try:
        found, skipped, total = _findings(out.decode())
    except (ValueError, KeyError, TypeError):
        reason = (err.decode().strip().splitlines() or ["no output"])[-1][:300]
        return Control(id="dependencies", title=TITLE, status="warn", evidence=(
            f"vulnerability service not reachable or scan failed: {reason}"))
    if found:
        return Control(id="dependencies", title=TITLE, status="fail",
                       evidence=f"{len(found)} vulnerable: {'; '.join(found)}")
    if skipped:  # the vulnerability service did not know them: unknown, not clean
        return Control(id="dependencies", title=TITLE, status="warn", evidence=(
            f"vulnerability service not reachable for {len(skipped)} of {total} packages "
            f"in {lock}, none known vulnerable: {skipped[0]}"))
    return Control(id="dependencies", title=TITLE, status="pass",
                   evidence=f"no known vulnerability in the {total} packages of {lock}")

