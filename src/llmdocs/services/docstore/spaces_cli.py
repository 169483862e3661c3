"""`llmdocs spaces ...`: create spaces and say who may do what in them."""

from __future__ import annotations

import typer
from rich.table import Table

from llmdocs.cli_support import call, console
from llmdocs.core.spaces import ROLES, Role
from llmdocs.services.docstore.client import DocStoreClient

cli = typer.Typer(name="spaces", no_args_is_help=True,
                  help="Spaces: teams' areas of documents, prompts and runs, and their "
                       "members (viewer reads, editor writes, admin grants).")


def _role(value: str) -> Role:
    for role in ROLES:
        if value == role:
            return role
    raise typer.BadParameter(f"one of {', '.join(ROLES)}")


@cli.command()
def create(name: str, description: str = typer.Option("", help="What the space is for.")
           ) -> None:
    """Create a space (takes docs:admin); you become its admin."""
    made = call(DocStoreClient, lambda docs: docs.create_space(name, description))
    console.print(f"created space {made.name}")


@cli.command("list")
def list_spaces(members: str = typer.Option(None, "--members", metavar="SPACE",
                                            help="List this space's members instead.")
                ) -> None:
    """The spaces you see and your role in each (or one space's members)."""
    if members:
        found = call(DocStoreClient, lambda docs: docs.members(members))
        table = Table("subject", "role", "granted by", "granted")
        for member in found.items:
            table.add_row(member.subject, member.role, member.granted_by,
                          member.granted_at.isoformat(timespec="seconds"))
    else:
        page = call(DocStoreClient, lambda docs: docs.spaces())
        table = Table("space", "your role", "description")
        for space in page.items:
            table.add_row(space.name, space.role or "", space.description)
    console.print(table)


@cli.command()
def grant(name: str, subject: str = typer.Argument(..., help="e.g. user:alice"),
          role: str = typer.Argument(..., help="viewer, editor or admin")) -> None:
    """Give SUBJECT ROLE in the space (admins of the space, or docs:admin)."""
    wanted = _role(role)
    member = call(DocStoreClient, lambda docs: docs.grant(name, subject, wanted))
    console.print(f"{member.subject} is {member.role} in {member.space}")


@cli.command()
def revoke(name: str, subject: str) -> None:
    """Take SUBJECT's membership of the space away."""
    call(DocStoreClient, lambda docs: docs.revoke(name, subject))
    console.print(f"{subject} is no member of {name}")
