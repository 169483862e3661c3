"""`llmdocs interpreter ...`: the interpreter from the terminal."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.live import Live
from rich.table import Table

from llmdocs.cli_support import (
    call,
    cli_settings,
    client,
    console,
    err_console,
    print_json,
    service_cli,
)
from llmdocs.core.client import ServiceError
from llmdocs.core.config import Settings
from llmdocs.core.spaces import DEFAULT_SPACE
from llmdocs.openapi import SpecBounds, SpecError, parse_spec
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.interpreter import spec
from llmdocs.services.interpreter.client import InterpreterClient
from llmdocs.services.interpreter.schemas import ExecutionOut
from llmdocs.services.orchestrator.schemas import FINISHED

cli = service_cli(spec, InterpreterClient, name="interpreter")


def ask(
    query: str = typer.Argument(..., help="What you want, in plain language."),
    format: str | None = typer.Option(None, "--format", "-f",
                                      help="json, markdown (the default), txt, csv, pdf "
                                      "or zip; not for listing or searching."),
    output: Path | None = typer.Option(None, "--output", "-o",
                                       help="Where to save the file (default: its name)."),
    session: str | None = typer.Option(None, "--session", help="Continue a conversation."),
    spec: str | None = typer.Option(None, "--spec",
                                    help="The API's OpenAPI spec: a file (stored in the "
                                    "doc-store first), an http(s) URL or a stored "
                                    "document's id."),
    space: str | None = typer.Option(None, "--space",
                                     help="The space to store the document in (and a spec "
                                     "file): default, or a session's for a follow-up."),
) -> None:
    """Ask for a document; watch the workflow's steps; save the file. Who asks is the
    token's subject."""
    from llmdocs.services.interpreter.example import summary_lines

    if output is not None and (problem := _unwritable(output)):
        err_console.print(f"[red]Cannot save to {output}: {problem}.[/red]")
        raise typer.Exit(1)
    chosen = _spec_argument(spec) if spec else {}
    settings = cli_settings().model_copy(update={"http_timeout_seconds": 120.0})

    async def watch(c: InterpreterClient) -> tuple[ExecutionOut, bytes]:
        fields = await _spec_fields(chosen, settings, space)
        try:
            execution = await c.execute(query, format=format, run_async=True,
                                        session_id=session, space=space, **fields)
        except ServiceError as exc:
            if 400 <= exc.status < 500:
                raise typer.Exit(_refused(exc)) from None
            raise
        execution = await _watched(c, execution)
        data = b""
        if execution.document_id:
            data = await c.download(execution.document_id)
        return execution, data

    execution, data = call(InterpreterClient, watch, settings)
    if execution.documents is not None:
        print_json(execution.documents)
        return
    if execution.status != "completed" or not execution.document_id:
        err_console.print(f"[red]{execution.status}: {execution.error}[/red]")
        raise typer.Exit(1)
    target = output or Path(execution.filename or execution.document_id)
    target.write_bytes(data)
    console.print(f"[green]Saved {target}[/green] ({len(data)} bytes), document "
                  f"{execution.document_id}")
    for line in summary_lines(execution):
        console.print(line, markup=False, highlight=False)


async def _watched(c: InterpreterClient, execution: ExecutionOut) -> ExecutionOut:
    """The execution once finished, its steps shown as they end."""
    with Live(console=console, refresh_per_second=8) as live:
        while True:
            live.update(_steps_table(execution))
            if execution.status in FINISHED or execution.documents is not None:
                break
            await asyncio.sleep(0.3)
            execution = await c.execution(execution.execution_id)
    if not console.is_terminal:  # Rich leaves a non-terminal's last line open
        console.line()
    return execution


def refresh(document_id: str) -> None:
    """Write a generated document again from its spec's latest version, as its next
    version; say which sections were kept and what changed."""
    from llmdocs.services.orchestrator.refresh import said

    async def watch(c: InterpreterClient) -> ExecutionOut:
        try:
            return await _watched(c, await c.refresh(document_id, run_async=True))
        except ServiceError as exc:
            if 400 <= exc.status < 500:
                raise typer.Exit(_refused(exc)) from None
            raise

    execution = call(InterpreterClient, watch)
    if execution.status != "completed" or not execution.provenance:
        err_console.print(f"[red]{execution.status}: {execution.error}[/red]")
        raise typer.Exit(1)
    record = execution.provenance["data_lineage"]["refresh"]
    console.print(f"[green]Document {document_id} is at version "
                  f"{record['previous_version'] + 1}[/green]", highlight=False)
    for what in ("reused", "regenerated", "removed"):
        console.print(f"{what}: {', '.join(record[what]) or 'none'}", markup=False,
                      highlight=False)
    for change in record["changes"]:
        console.print(f"{'breaking: ' if change['breaking'] else ''}{said(change)}",
                      markup=False, highlight=False)


@dataclass
class _SpecFile:
    path: Path
    text: str
    title: str  # the spec's info.title


def _spec_argument(spec: str) -> dict[str, str] | _SpecFile:
    """What `--spec` names: a URL (the request's spec_url), a file (read and checked
    now, stored before the request) or else a stored document's id, which the
    interpreter checks."""
    if spec.startswith(("http://", "https://")):
        return {"spec_url": spec}
    path = Path(spec)
    if not path.is_file():
        return {"spec_document_id": spec}
    try:
        content = path.read_bytes()
        info = parse_spec(content, SpecBounds()).get("info")
        text = content.decode("utf-8")
    except (OSError, SpecError, UnicodeDecodeError) as exc:
        err_console.print(f"[red]{path} is not a usable OpenAPI spec: {exc}[/red]",
                          highlight=False)
        raise typer.Exit(1) from None
    title = str(info.get("title") or path.stem) if isinstance(info, dict) else path.stem
    return _SpecFile(path, text, title)


async def _spec_fields(spec: dict[str, str] | _SpecFile, settings: Settings,
                       space: str | None) -> dict[str, str]:
    """The request's spec fields; a spec file is stored in the doc-store (tag `openapi`,
    in the request's space) first and named by its new id."""
    if not isinstance(spec, _SpecFile):
        return spec
    async with client(DocStoreClient, settings) as docs:
        stored = await docs.put(spec.text, title=spec.title, tags=["openapi"],
                                space=space or DEFAULT_SPACE,
                                format="json" if spec.path.suffix.lower() == ".json"
                                else "yaml", metadata={"filename": spec.path.name})
    console.print(f"Stored {spec.path} as document {stored.document_id}", highlight=False)
    return {"spec_document_id": stored.document_id}


def _unwritable(output: Path) -> str | None:
    """Why `-o` cannot be written (None when it can), asked before anything runs."""
    folder = output.parent
    if output.is_dir():
        return "it is a directory"
    if not folder.is_dir():
        return f"no directory {folder}"
    if not os.access(folder, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        return "not writable"
    return None


def _refused(exc: ServiceError) -> int:
    """Print a refusal with the reasons the server gave for each field; exit code 1."""
    err_console.print(f"[red]{exc}[/red]", highlight=False)
    for error in exc.problem.get("errors") or []:
        if isinstance(error, dict):
            err_console.print(f"  {error.get('field', '')}: {error.get('message', '')}",
                              markup=False, highlight=False)
    return 1


def _steps_table(execution: ExecutionOut) -> Table:
    table = Table(title=f"{execution.query[:60]} — {execution.status}")
    for column in ("step", "status", "ms"):
        table.add_column(column)
    for step in execution.steps:
        colour = "green" if step["status"] == "completed" else "red"
        table.add_row(step["name"], f"[{colour}]{step['status']}[/{colour}]",
                      f"{step['duration_ms']:.0f}")
    return table
