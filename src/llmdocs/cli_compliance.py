"""`llmdocs compliance report`: the running deployment's controls, pass, fail or warn
with evidence, as JSON, a Markdown table or PDF; exit 1 when a control fails."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from llmdocs.cli_support import cli_settings, cli_token, print_json, run

cli = typer.Typer(name="compliance", help="Check the deployment's compliance controls.",
                  no_args_is_help=True)


class ReportFormat(StrEnum):
    json = "json"
    markdown = "markdown"
    pdf = "pdf"


@cli.command("report")
def report(
    fmt: ReportFormat = typer.Option(ReportFormat.markdown, "--format",
                                     help="json, markdown or pdf (to --output or stdout)."),
    output: Path | None = typer.Option(None, "--output", "-o", dir_okay=False,
                                       help="Write the report to this file."),
    lock: Path = typer.Option(Path("requirements.lock"), "--lock", dir_okay=False,
                              help="The pinned requirements pip-audit scans."),
    scan: bool = typer.Option(True, "--dependency-scan/--no-dependency-scan",
                              help="Scan the lock with pip-audit (needs its service)."),
) -> None:
    """Check the running deployment (the configured service URLs and settings) control
    by control; exit 1 when any control fails."""
    from llmdocs.compliance import build_report, markdown, pdf  # reportlab: only here

    settings = cli_settings()
    # only the audit verification needs a token: without one the rest is still checked
    keyed = settings.jwt_secret is not None or (settings.data_dir / "jwt-secret").exists()
    token = cli_token(settings) if settings.token is not None or keyed else None
    result = run(build_report(settings, token, lock=lock if scan else None))
    if fmt is ReportFormat.pdf:
        content = pdf(result)
        if output is not None:
            output.write_bytes(content)
        else:
            sys.stdout.buffer.write(content)
    elif output is not None:
        output.write_text(result.model_dump_json(indent=2) if fmt is ReportFormat.json
                          else markdown(result))
    elif fmt is ReportFormat.json:
        print_json(result.model_dump(mode="json"))
    else:  # as is: a console would wrap the table's rows at the terminal's width
        sys.stdout.write(markdown(result))
    if result.failed:
        raise typer.Exit(1)
