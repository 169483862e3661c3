"""`llmdocs runs ...`: the orchestrator from the terminal."""

from __future__ import annotations

import typer
from rich.table import Table

from llmdocs.cli_support import call, console, print_json, service_cli
from llmdocs.services.orchestrator import spec
from llmdocs.services.orchestrator.client import OrchestratorClient

cli = service_cli(spec, OrchestratorClient, name="runs")


@cli.command("list")
def list_runs(
    workflow: str | None = typer.Option(None, help="Only this workflow."),
    status: str | None = typer.Option(None, help="pending, running, completed, failed..."),
    limit: int = typer.Option(20, min=1, max=500),
) -> None:
    """Recent workflow runs."""

    table = Table(title="workflow runs")
    for column in ("id", "workflow", "status", "user", "steps", "created", "error"):
        table.add_column(column)
    for r in call(OrchestratorClient, lambda c: c.runs(
            workflow=workflow, status=status, limit=limit)).items:
        table.add_row(r.id, r.workflow, r.status, r.user_id, str(len(r.steps)),
                      r.created_at.isoformat(timespec="seconds"), (r.error or "")[:60])
    console.print(table)


@cli.command("show")
def show_run(run_id: str = typer.Argument(...)) -> None:
    """One run with its steps and result."""

    print_json(call(OrchestratorClient, lambda c: c.run(run_id)).model_dump(mode="json"))


@cli.command("resume")
def resume_run(run_id: str = typer.Argument(...)) -> None:
    """Resume a failed, cancelled or orphaned run from its last checkpoint."""

    resumed = call(OrchestratorClient, lambda c: c.resume_run(run_id))
    console.print(f"run {resumed.id}: {resumed.status} (attempt {resumed.attempts})")
