"""`llmdocs analysis ...` and `llmdocs findings`: what the analysis service found."""

from __future__ import annotations

import typer
from rich.table import Table

from llmdocs.cli_support import call, console, print_json, service_cli
from llmdocs.services.analysis import spec
from llmdocs.services.analysis.client import AnalysisClient

cli = service_cli(spec, AnalysisClient, name="analysis")


@cli.command()
def findings(
    document_id: str = typer.Option(None, "--document", help="Only those touching it."),
    all_: bool = typer.Option(False, "--all", help="Closed ones too."),
    limit: int = typer.Option(50, min=1, max=500),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Open findings, newest first: sources that changed under generated documents."""
    found = call(AnalysisClient, lambda a: a.findings(document_id, None if all_ else "open",
                                                      limit))
    if as_json:
        print_json([f.model_dump(mode="json") for f in found])
        return
    table = Table(title="findings" if all_ else "open findings")
    for column in ("created", "source", "base → head", "breaking", "other", "documents",
                   "status", "reason"):
        table.add_column(column)
    for f in found:
        table.add_row(f.created_at.strftime("%Y-%m-%d %H:%M:%S"), f.source,
                      f"{f.base[:12]} → {f.head[:12]}", str(f.diff.summary.breaking),
                      str(f.diff.summary.non_breaking),
                      ", ".join(d.document_id for d in f.documents), f.status,
                      f.reason or "")
    console.print(table)
