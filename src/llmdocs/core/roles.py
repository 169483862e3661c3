"""Roles and the scopes they grant, in one place: tokens (ours and an identity
provider's) name roles, and every service derives the same scopes from them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from llmdocs.core.config import Settings

# what a service acting as itself may do: read and write in every family
SERVICE_SCOPES = ("*:read", "*:write")

BUILTIN_ROLES: Mapping[str, frozenset[str]] = {
    "viewer": frozenset({"*:read"}),
    "editor": frozenset({"*:read", "*:write"}),
    "admin": frozenset({"*"}),
    "auditor": frozenset({"*:read", "logs:audit"}),
    "service": frozenset(SERVICE_SCOPES),
}


def role_table(settings: Settings) -> dict[str, frozenset[str]]:
    """The built-in roles, with the configured ones (`LLMDOCS_ROLES`) added or replacing
    them, so a deployment can widen or narrow a role without a release."""
    return {**BUILTIN_ROLES,
            **{name: frozenset(scopes) for name, scopes in settings.roles.items()}}


def scopes_for(settings: Settings, roles: Iterable[str]) -> frozenset[str]:
    """The scopes `roles` grant; a role nobody defined grants none (it is not an error:
    an identity provider may well name roles meant for other applications)."""
    table = role_table(settings)
    return frozenset().union(*(table.get(role, frozenset()) for role in roles))


def names(raw: object) -> list[str]:
    """Role (or scope) names from a claim: a JSON list, or a space-separated string as
    OAuth's `scope` is; anything else names none."""
    if isinstance(raw, str):
        return raw.split()
    if isinstance(raw, list | tuple):
        return [item for item in raw if isinstance(item, str)]
    return []
