"""`llmdocs docs ...`: the doc-store from the terminal."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress
from rich.table import Table

from llmdocs.cli_support import call, console, print_json, service_cli
from llmdocs.core.client import ServiceError
from llmdocs.services.docstore import spec
from llmdocs.services.docstore.client import DocStoreClient

cli = service_cli(spec, DocStoreClient, name="docs")


@cli.command("refresh")
def refresh(document_id: str = typer.Argument(..., help="A generated document's id.")
            ) -> None:
    """Write a generated API document again from its spec's latest version, as its next
    version: unchanged sections are kept, a section lists the spec's changes."""
    from llmdocs.services.interpreter.cli import refresh as refresh_document

    refresh_document(document_id)


def _format_of(path: Path) -> str:
    from llmdocs.services.docstore.queries import BINARY_FORMATS, TEXT_FORMATS

    suffix = path.suffix.lstrip(".").lower()
    return suffix if suffix in TEXT_FORMATS or suffix in BINARY_FORMATS else "binary"


@cli.command()
def put(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    source: str = typer.Option("", help="Where the files come from."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Tag (repeatable)."),
    title: str = typer.Option(None, help="Title (default: the file name)."),
    space: str = typer.Option("default", help="The space they belong to."),
) -> None:
    """Store files; a progress bar shows the way through many."""

    async def store(docs: DocStoreClient) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("storing", total=len(files))
            for path in files:
                try:
                    stored = await docs.upload(
                        path.read_bytes(), path.name,
                        content_type=mimetypes.guess_type(path.name)[0],
                        format=_format_of(path), source=source, tags=tag,
                        title=title or path.name, space=space)
                    rows.append({"file": str(path), "id": stored.document_id,
                                 "version": stored.version,
                                 "status": "stored" if stored.created else "unchanged"})
                except ServiceError as exc:
                    rows.append({"file": str(path), "id": "", "version": "",
                                 "status": f"failed: {exc}"})
                progress.advance(task)
        return rows

    rows = call(DocStoreClient, store)
    table = Table("file", "id", "version", "status")
    for row in rows:
        table.add_row(row["file"], row["id"], str(row["version"]), row["status"])
    console.print(table)
    if any(row["status"].startswith("failed") for row in rows):
        raise typer.Exit(1)


@cli.command()
def get(document_id: str, version: int = typer.Option(None, help="An older version.")) -> None:
    """A document's metadata and text content."""

    print_json(call(DocStoreClient, lambda docs: docs.get(document_id, version)
                    ).model_dump(mode="json"))


@cli.command()
def download(
    document_id: str,
    output: Path = typer.Option(None, "--output", "-o", help="File to write (default: "
                                "the document's file name in the current directory)."),
    version: int = typer.Option(None, help="An older version."),
) -> None:
    """Save a document's bytes to a file."""

    data, _type, name = call(DocStoreClient, lambda docs: docs.download(document_id, version))
    target = output or Path(Path(name).name)  # never a path the server chose
    target.write_bytes(data)
    console.print(f"wrote {len(data)} bytes to {target}")


@cli.command("list")
def list_documents(
    source: str = typer.Option(None), format: str = typer.Option(None),
    tag: list[str] = typer.Option([], "--tag", "-t"), author: str = typer.Option(None),
    sort: str = typer.Option("-created_at"), limit: int = typer.Option(20),
    cursor: str = typer.Option(None), json_out: bool = typer.Option(False, "--json"),
) -> None:
    """List documents, newest first."""

    page = call(DocStoreClient, lambda docs: docs.list(
        source=source, format=format, tag=tag or None, author=author, sort=sort, limit=limit,
        cursor=cursor)).model_dump(mode="json")
    if json_out:
        print_json(page)
        return
    table = Table("id", "v", "title", "format", "source", "tags", "updated")
    for doc in page["items"]:
        table.add_row(doc["document_id"], str(doc["version"]), doc["title"], doc["format"],
                      doc["source"], ",".join(doc["tags"]), doc["updated_at"])
    console.print(table)
    if page["next_cursor"]:
        console.print(f"more: --cursor {page['next_cursor']}")


@cli.command()
def search(q: str, limit: int = typer.Option(10), tag: list[str] = typer.Option([], "--tag"),
           source: str = typer.Option(None)) -> None:
    """Full-text search, best first."""

    page = call(DocStoreClient, lambda docs: docs.search(q, limit=limit, tag=tag or None,
                                                         source=source))
    table = Table("score", "id", "title", "snippet")
    for hit in page.model_dump(mode="json")["items"]:
        table.add_row(f"{hit['score']:.3f}", hit["document_id"], hit["title"],
                      hit["snippet"].replace("<mark>", "[bold]").replace("</mark>", "[/bold]"))
    console.print(table)


@cli.command()
def history(document_id: str) -> None:
    """Every version of a document, newest first."""

    versions = call(DocStoreClient, lambda docs: docs.versions(document_id))
    table = Table("version", "current", "hash", "size", "author", "message", "created")
    for v in versions.model_dump(mode="json")["items"]:
        table.add_row(str(v["version"]), "*" if v["is_current"] else "",
                      v["content_hash"][:12], str(v["size"]), v["author"], v["message"] or "",
                      v["created_at"])
    console.print(table)


@cli.command()
def rollback(document_id: str, version: int) -> None:
    """Make a new version equal to an old one."""

    stored = call(DocStoreClient, lambda docs: docs.rollback(document_id, version)
                  ).model_dump(mode="json")
    console.print(f"{document_id} is now at version {stored['version']} "
                  f"(= version {version}, {stored['content_hash'][:12]})")


@cli.command()
def provenance(document_id: str, version: int = typer.Option(None)) -> None:
    """The provenance record and relations of a document."""

    print_json(call(DocStoreClient, lambda docs: docs.provenance(document_id, version)
                    ).model_dump(mode="json"))
