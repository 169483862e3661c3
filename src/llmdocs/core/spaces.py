"""Spaces: a team's area that documents, prompts and runs belong to. Who sees what is
decided here once, so every service filters the same way: a caller sees the spaces
they are a member of (and `default`, unless closed), with their role there capping
what their token's scopes allow."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Literal

from cachetools import LRUCache
from fastapi import Depends, FastAPI, Request
from pydantic import AfterValidator, Field

from llmdocs.core.auth import Principal, require
from llmdocs.core.config import Settings

DEFAULT_SPACE = "default"
SPACES_ADMIN = "spaces:admin"  # sees and grants in every space, as `*` does
Role = Literal["viewer", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")  # each allows what those before do
_RANK = {role: rank for rank, role in enumerate(ROLES)}
# lower-case letters, digits and inner dashes: a name that is safe in URLs, paths, logs
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
MAX_NAME = 63

# a subject's memberships, space → role, as the doc-store keeps them
Memberships = Mapping[str, Role]
# how an app learns a caller's memberships: the doc-store reads its table, other
# services ask it (`GET /spaces/mine` with the caller's own delegated token)
MembershipLookup = Callable[[FastAPI, Principal], Awaitable[Memberships]]


def valid_space(name: str) -> str:
    """`name` when it is a space name (1-63 of a-z, 0-9 and inner '-'), else ValueError:
    names show in URLs and CLI output, so they stay plain."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"a space name is 1 to {MAX_NAME} lower-case letters, digits and "
                         f"inner dashes, not {name[:80]!r}")
    return name


# a space's name in a request body: checked where it is parsed (a 422 that says why)
SpaceName = Annotated[str, Field(min_length=1, max_length=MAX_NAME),
                      AfterValidator(valid_space)]


def role_allows(held: str | None, needed: Role) -> bool:
    """Whether a role `held` in a space covers `needed` (an admin also edits and reads)."""
    return held in _RANK and _RANK[held] >= _RANK[needed]


@dataclass(frozen=True)
class SpaceView:
    """What one caller may do in which space. `everything`: services acting as
    themselves and holders of `spaces:admin` (or `*`) are not filtered at all."""

    subject: str
    roles: Mapping[str, Role] = field(default_factory=lambda: MappingProxyType({}))
    everything: bool = False

    @classmethod
    def of(cls, principal: Principal, memberships: Memberships, settings: Settings) -> SpaceView:
        """The view of `principal`: their memberships, plus the default space's open
        role (`LLMDOCS_SPACES_DEFAULT_ROLE`) where they hold none higher there."""
        if sees_everything(principal):
            return cls(principal.subject, everything=True)
        roles: dict[str, Role] = dict(memberships)
        opened = settings.spaces_default_role
        if opened != "none" and not role_allows(roles.get(DEFAULT_SPACE), opened):
            roles[DEFAULT_SPACE] = opened
        return cls(principal.subject, MappingProxyType(roles))

    def visible(self) -> frozenset[str] | None:
        """The spaces to filter on (`WHERE space IN …`); None: no filter at all."""
        return None if self.everything else frozenset(self.roles)

    def role(self, space: str) -> Role | None:
        return "admin" if self.everything else self.roles.get(space)

    def may_read(self, space: str) -> bool:
        return self.everything or space in self.roles

    def may_write(self, space: str) -> bool:
        return self.everything or role_allows(self.roles.get(space), "editor")

    def may_admin(self, space: str) -> bool:
        """Grant and revoke members there; the scope a route requires still applies."""
        return self.everything or role_allows(self.roles.get(space), "admin")


def sees_everything(principal: Principal) -> bool:
    """Services acting as themselves and space admins are filtered by no space."""
    return principal.is_service or principal.allows(SPACES_ADMIN)


async def _no_memberships(app: FastAPI, principal: Principal) -> Memberships:
    return {}


# memberships and when they expire, by (app, subject): a grant or revoke shows in other
# services within `LLMDOCS_SPACES_CACHE_SECONDS` (the doc-store drops its own at once)
_cache: LRUCache[tuple[int, str], tuple[float, Memberships]] = LRUCache(maxsize=4096)


def forget(app: FastAPI, subject: str | None = None) -> None:
    """Drop cached memberships (of `subject`, or all) after a grant or revoke here."""
    for key in [k for k in _cache if k[0] == id(app) and subject in (None, k[1])]:
        _cache.pop(key, None)


async def memberships_of(app: FastAPI, principal: Principal) -> Memberships:
    """The caller's memberships through the app's lookup, cached for a few seconds."""
    settings: Settings = app.state.settings
    key = (id(app), principal.subject)
    cached = _cache.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    lookup: MembershipLookup = getattr(app.state, "memberships", None) or _no_memberships
    found: Memberships = MappingProxyType(dict(await lookup(app, principal)))
    if settings.spaces_cache_seconds > 0:
        _cache[key] = (time.monotonic() + settings.spaces_cache_seconds, found)
    return found


_authenticated = require()


async def space_view(request: Request,
                     principal: Principal = Depends(_authenticated)) -> SpaceView:
    """A route dependency: the caller's `SpaceView`, memberships resolved once per request."""
    view: SpaceView | None = getattr(request.state, "space_view", None)
    if view is None:
        memberships = {} if sees_everything(principal) else await memberships_of(
            request.app, principal)
        view = SpaceView.of(principal, memberships, request.app.state.settings)
        request.state.space_view = view
    return view


Spaces = Annotated[SpaceView, Depends(space_view)]
