"""Who may be told about what: a notification about something in a space reaches only
subscriptions whose owners may read that space, decided by core/spaces as for the thing
itself (to a non-member it is a 404, so a notification of it would be a leak)."""

from __future__ import annotations

from fastapi import FastAPI

from llmdocs.core.auth import Principal
from llmdocs.core.spaces import SpaceView, memberships_of, sees_everything


class Audience:
    """Subscription owners' space views, their memberships asked of the doc-store as the
    owner (a token with no scopes: `GET /spaces/mine` needs none) and cached per subject
    for `LLMDOCS_SPACES_CACHE_SECONDS`, so a revoke stops deliveries within that time."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def view_of(self, owner: str) -> SpaceView:
        principal = Principal(subject=owner)  # a service owner is filtered by no space
        memberships = {} if sees_everything(principal) else await memberships_of(
            self.app, principal)
        return SpaceView.of(principal, memberships, self.app.state.settings)
