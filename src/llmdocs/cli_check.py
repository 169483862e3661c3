"""`llmdocs check DOC --spec SPEC`: the document check on plain files, for a person or a
CI job; no service runs. Exit 1 when a claim is unsupported or an operation missing."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.table import Table
from rich.text import Text

from llmdocs.claims import DocumentCheck, check_document
from llmdocs.cli_support import console, err_console, print_json
from llmdocs.openapi import SpecBounds, SpecError, parse_spec


def _read(path: Path, limit: int, what: str) -> bytes:
    """A file's bytes, refused (exit 2, saying why) past `limit` or when unreadable."""
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except OSError as exc:
        _fail(f"cannot read the {what} {path}: {exc.strerror}")
    if len(raw) > limit:
        _fail(f"the {what} {path} is larger than {limit} bytes")
    return raw


def _fail(reason: str) -> NoReturn:
    err_console.print(reason, style="red", markup=False, highlight=False)
    raise typer.Exit(2)


def _table(result: DocumentCheck, doc: Path) -> None:
    table = Table(title=Text(f"{doc}: {result.supported} of {result.claims} claims "
                             "supported"))
    for column in ("line", "kind", "claim", "operation", "excerpt"):
        table.add_column(column, overflow="fold")
    for u in result.unsupported:
        table.add_row(str(u.line), u.kind, Text(u.claim), Text(u.operation or "-"),
                      Text(u.excerpt[:120]))
    console.print(table)
    for gap in result.gaps:
        console.print(Text(f"missing: {gap}"))
    console.print(f"completeness {result.completeness:.4f}, "
                  f"truthfulness {result.truthfulness:.4f}")


def check(
    doc: Path = typer.Argument(..., dir_okay=False, help="The Markdown document."),
    spec: Path = typer.Option(..., "--spec", dir_okay=False,
                              help="The OpenAPI spec (YAML or JSON; Swagger 2.0 too)."),
    as_json: bool = typer.Option(False, "--json", help="Print the check as JSON."),
) -> None:
    """What a document claims that the spec does not support, and which operations it
    misses: exit 1 when there is any, 2 when the document or spec cannot be read."""
    bounds = SpecBounds()
    raw_spec = _read(spec, bounds.max_spec_bytes, "spec")
    try:
        markdown = _read(doc, bounds.max_spec_bytes, "document").decode("utf-8-sig")
    except UnicodeDecodeError:
        _fail(f"the document {doc} is not UTF-8 text")
    if "\x00" in markdown:
        _fail(f"the document {doc} is not Markdown text (it holds NUL bytes)")
    try:
        result = check_document(markdown, parse_spec(raw_spec, bounds), bounds)
    except SpecError as exc:
        _fail(f"the spec {spec} cannot be used: {exc}")
    if as_json:
        print_json(result.to_json())
    else:
        _table(result, doc)
    if result.unsupported or result.missing:
        raise typer.Exit(1)
