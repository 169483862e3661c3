"""`llmdocs web ...`: the portal's commands; `login` prints a one-time sign-in link."""

from __future__ import annotations

import getpass

import typer

from llmdocs.cli_support import cli_settings, console, require_signing_key, service_cli
from llmdocs.services.web import spec
from llmdocs.services.web.client import WebClient
from llmdocs.services.web.sessions import sign_in_link
from llmdocs.services.web.settings import WebSettings

cli = service_cli(spec, WebClient, name="web")


@cli.command()
def login(
    subject: str = typer.Option(None, "--sub", help="Who signs in (default: you, as admin)."),
    role: list[str] = typer.Option(None, "--role", help="Roles instead of every scope "
                                   "(viewer, editor, admin, …); repeatable."),
) -> None:
    """Print a new one-time sign-in link to the portal (good for LLMDOCS_WEB_LINK_MINUTES)."""
    settings = cli_settings()
    require_signing_key(settings)
    who = subject or f"user:{getpass.getuser()}"
    link = sign_in_link(settings, WebSettings(), who, scopes=() if role else ("*",),
                        roles=role or ())
    console.print(link, soft_wrap=True, markup=False, highlight=False)
