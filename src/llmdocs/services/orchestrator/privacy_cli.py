"""`llmdocs privacy ...`: a person's data exported, or erased everywhere (GDPR)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from llmdocs.cli_support import call, console, print_json
from llmdocs.services.orchestrator.client import OrchestratorClient

cli = typer.Typer(name="privacy", no_args_is_help=True,
                  help="Privacy requests: export or erase what llmdocs holds about a person "
                  "(needs privacy:admin, which the admin role has).")


@cli.command()
def export(
    subject: str = typer.Argument(..., help="Whom: a token's subject, e.g. user:alice."),
    output: Path = typer.Option(..., "--output", "-o", dir_okay=False, writable=True,
                                help="The ZIP file to write."),
) -> None:
    """Everything every service holds about SUBJECT, as a ZIP of JSON files."""
    archive = call(OrchestratorClient, lambda c: c.export_subject(subject))
    output.write_bytes(archive)
    console.print(f"wrote {output} ({len(archive)} bytes)")


@cli.command()
def erase(
    subject: str = typer.Argument(..., help="Whom: a token's subject, e.g. user:alice."),
    transfer_to: str | None = typer.Option(
        None, "--transfer-to", help="Give the documents SUBJECT owns to this subject "
        "instead of deleting them (default: LLMDOCS_PRIVACY_OWNED_DOCUMENTS)."),
    as_json: bool = typer.Option(False, "--json", help="Print the receipt as JSON."),
) -> None:
    """Erase SUBJECT in every service (deleted, or pseudonymised where a record must stay).

    Exits 1 while a service is down: run it again to complete the erasure."""
    receipt = call(OrchestratorClient, lambda c: c.erase_subject(subject,
                                                                transfer_to=transfer_to))
    if as_json:
        print_json(receipt.model_dump(mode="json"))
        return
    table = Table(title=f"erasure {receipt.id}: {receipt.status}, as {receipt.pseudonym}")
    for column in ("service", "status", "erased"):
        table.add_column(column)
    for key, part in receipt.services.items():
        table.add_row(key, part.status, ", ".join(f"{what}: {count}"
                                                  for what, count in part.erased.items()))
    console.print(table)
    if receipt.nothing_found:
        console.print("nothing was found about this subject")
