"""Roles map to scopes in one place: tokens name roles, every service derives the same
scopes from them, configuration adds or narrows roles, and an unknown role grants
nothing rather than failing the request."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmdocs.cli import app
from llmdocs.core.auth import (
    SERVICE_SCOPES,
    delegated_token,
    issue_token,
    service_token,
    verify_token,
)
from llmdocs.core.config import Settings


@pytest.mark.parametrize(("role", "allowed", "refused"), [
    ("viewer", ["docs:read", "logs:read"], ["docs:write", "logs:audit", "llm:admin"]),
    ("editor", ["docs:read", "prompts:write"], ["docs:admin", "logs:audit"]),
    ("admin", ["docs:admin", "logs:audit", "workflows:write"], []),
    ("auditor", ["logs:audit", "docs:read"], ["docs:write", "logs:admin"]),
    ("service", ["docs:write", "workflows:read"], ["docs:admin"]),
])
def test_a_built_in_role_grants_its_scopes(settings: Settings, role: str,
                                           allowed: list[str], refused: list[str]) -> None:
    caller = verify_token(settings, issue_token(settings, "user:ann", [], roles=[role]))
    assert caller.roles == {role}
    assert all(caller.allows(scope) for scope in allowed)
    assert not any(caller.allows(scope) for scope in refused)


def test_scopes_are_the_tokens_own_and_its_roles(settings: Settings) -> None:
    caller = verify_token(settings, issue_token(settings, "user:ann", ["logs:audit"],
                                                roles=["viewer", "no-such-role"]))
    assert caller.scopes == {"logs:audit", "*:read"}
    assert caller.roles == {"viewer", "no-such-role"}  # kept, granting nothing


def test_configuration_adds_and_replaces_roles(settings: Settings) -> None:
    configured = settings.model_copy(update={"roles": {
        "writer": ["docs:write", "docs:read"], "viewer": ["docs:read"]}})
    writer = verify_token(configured, issue_token(configured, "user:w", [], roles=["writer"]))
    assert writer.allows("docs:write") and not writer.allows("prompts:read")
    viewer = verify_token(configured, issue_token(configured, "user:v", [], roles=["viewer"]))
    assert viewer.allows("docs:read") and not viewer.allows("logs:read")


def test_roles_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDOCS_ROLES", json.dumps({"writer": ["docs:write"]}))
    assert Settings().roles == {"writer": ["docs:write"]}


def test_service_tokens_hold_the_service_role_and_delegation_keeps_roles(
        settings: Settings) -> None:
    service = verify_token(settings, service_token(settings, "interpreter"))
    assert service.roles == {"service"} and service.scopes == frozenset(SERVICE_SCOPES)
    user = verify_token(settings, issue_token(settings, "user:ann", [], roles=["editor"]))
    acting = verify_token(settings, delegated_token(settings, "orchestrator", user))
    assert acting.roles == {"editor"} and acting.scopes == user.scopes


def test_the_cli_issues_a_token_with_roles(settings: Settings,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDOCS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LLMDOCS_JWT_SECRET", settings.signing_key)
    issued = CliRunner().invoke(app, ["token", "--role", "viewer", "--role", "auditor",
                                      "--sub", "user:ann"])
    assert issued.exit_code == 0, issued.output
    caller = verify_token(settings, issued.output.strip())
    assert caller.roles == {"viewer", "auditor"}
    assert caller.allows("logs:audit") and not caller.allows("docs:write")
    plain = verify_token(settings, CliRunner().invoke(app, ["token"]).output.strip())
    assert plain.scopes == {"*"} and not plain.roles
