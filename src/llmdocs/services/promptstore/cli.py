"""`llmdocs prompts ...`: the prompt-store from the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel, ValidationError
from rich.table import Table

from llmdocs.cli_support import call, console, err_console, print_json, service_cli
from llmdocs.services.promptstore import spec
from llmdocs.services.promptstore.client import PromptStoreClient
from llmdocs.services.promptstore.schemas import AbTestIn, PromptIn, SearchIn, VersionIn
from llmdocs.services.promptstore.seeding import parse_prompt_file

cli = service_cli(spec, PromptStoreClient, name="prompts")
ab = typer.Typer(name="ab", help="A/B tests between prompt versions.", no_args_is_help=True)
cli.add_typer(ab)


def show_json(value: BaseModel | list[Any]) -> None:
    print_json(value.model_dump(mode="json") if isinstance(value, BaseModel)
               else [v.model_dump(mode="json") for v in value])


def read_file(path: Path) -> dict[str, Any]:
    try:
        return parse_prompt_file(path.read_text())
    except (OSError, ValueError) as exc:
        err_console.print(f"[red]{path}: {exc}[/red]")
        raise typer.Exit(2) from None


def checked(model: type[BaseModel], fields: dict[str, Any]) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@cli.command("list")
def list_prompts(category: str = typer.Option(None), tag: str = typer.Option(None),
                 limit: int = 50, offset: int = 0) -> None:
    """Prompts, by category and tag."""
    page = call(PromptStoreClient, lambda c: c.list_prompts(category, tag, limit, offset))
    table = Table(title=f"{page.total} prompt(s)")
    for column in ("name", "category", "latest", "labels", "description"):
        table.add_column(column)
    for p in page.items:
        labels = ", ".join(f"{k}={v}" for k, v in p.labels.items())
        table.add_row(p.name, p.category, str(p.latest_version), labels, p.description[:60])
    console.print(table)


@cli.command()
def show(name: str, label: str = typer.Option(None), version: int = typer.Option(None)
         ) -> None:
    """The version a name resolves to (label defaults to production)."""
    show_json(call(PromptStoreClient, lambda c: c.get(name, label=label, version=version)))


@cli.command()
def create(file: Path) -> None:
    """Create a prompt from a prompt file (Markdown with YAML front matter)."""
    prompt = checked(PromptIn, read_file(file))
    made = call(PromptStoreClient, lambda c: c.create(prompt))
    console.print(f"created {made.name} ({made.id}) version {made.latest_version}")


@cli.command()
def edit(file: Path, message: str = typer.Option("", "--message", "-m"),
         label: list[str] = typer.Option([], "--label", "-l")) -> None:
    """Add a new version to the prompt the file names (its `name`)."""
    fields = read_file(file)
    name = fields.pop("name", None)
    if not name:
        err_console.print(f"[red]{file}: the front matter needs a name[/red]")
        raise typer.Exit(2)
    version_fields = {k: v for k, v in fields.items() if k in VersionIn.model_fields}
    version = checked(VersionIn, {**version_fields, "message": message, "labels": label})
    made = call(PromptStoreClient, lambda c: c.add_version(name, version))
    console.print(f"{name}: version {made.version} ({', '.join(made.labels)})")


@cli.command("label")
def set_label(name: str, label: str, version: int) -> None:
    """Point a label at a version (rollback is moving it back)."""
    made = call(PromptStoreClient, lambda c: c.set_label(name, label, version))
    console.print(f"{made.name}: {label} -> {made.labels[label]}")


@cli.command()
def render(name: str, var: list[str] = typer.Option([], "--var", "-v", help="key=value"),
           label: str = typer.Option(None), version: int = typer.Option(None)) -> None:
    """Render a prompt on the store with values given as key=value."""
    values = dict(item.split("=", 1) for item in var if "=" in item)
    if len(values) != len(var):
        err_console.print("[red]--var takes key=value[/red]")
        raise typer.Exit(2)
    rendered = call(PromptStoreClient, lambda c: c.render_remote(name, values, label=label,
                                                                 version=version))
    if rendered.text is not None:
        console.print(rendered.text, markup=False, highlight=False)
    else:
        show_json(rendered)


@cli.command()
def search(query: str, category: str = typer.Option(None),
           tag: list[str] = typer.Option([], "--tag")) -> None:
    """Search names, content, descriptions and tags."""
    page = call(PromptStoreClient, lambda c: c.search(SearchIn(query=query, category=category,
                                                               tags=tag)))
    for p in page.items:
        console.print(f"{p.name}  [dim]{p.category}  v{p.latest_version}  {p.description}[/dim]")


@cli.command()
def history(name: str) -> None:
    """Versions of a prompt, newest first."""
    table = Table(title=name)
    for column in ("version", "state", "labels", "created", "by", "message"):
        table.add_column(column)
    for v in call(PromptStoreClient, lambda c: c.history(name)):
        table.add_row(str(v.version), v.state, ", ".join(v.labels),
                      v.created_at.isoformat(timespec="seconds"), v.created_by, v.message)
    console.print(table)


@ab.command("create")
def ab_create(prompt: str, name: str,
              variant: list[str] = typer.Option(..., "--variant", help="version:weight"),
              metric: str = "success", min_samples: int = 30,
              significance: float = 0.05) -> None:
    """Start an A/B test; the first variant is the control."""
    variants = [dict(zip(("version", "weight"), v.split(":", 1), strict=True))
                for v in variant if ":" in v]
    test = checked(AbTestIn, {"prompt": prompt, "name": name, "variants": variants,
                              "metric": metric, "min_samples": min_samples,
                              "significance": significance})
    show_json(call(PromptStoreClient, lambda c: c.create_test(test)))


@ab.command("results")
def ab_results(test_id: str) -> None:
    """Per-variant statistics of a test."""
    show_json(call(PromptStoreClient, lambda c: c.test_results(test_id)))


@ab.command("stop")
def ab_stop(test_id: str, promote: bool = typer.Option(False, "--promote")) -> None:
    """Stop a test; with --promote its current winner gets the promote label."""
    show_json(call(PromptStoreClient, lambda c: c.stop_test(test_id, promote)))
