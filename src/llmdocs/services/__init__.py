"""The services. Each package declares its `spec` and `create_app`."""

from __future__ import annotations

import importlib
from contextlib import AbstractAsyncContextManager

import structlog
from fastapi import FastAPI
from sqlalchemy import Connection

from llmdocs.core.app import create_service_app
from llmdocs.core.auth import Principal
from llmdocs.core.client import ServiceError
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.core.resources import Resources
from llmdocs.core.service import Hooks, ServiceSpec
from llmdocs.core.spaces import Memberships

log = structlog.get_logger(__name__)


def _upgrade(connection: Connection) -> None:
    from llmdocs.migrations import upgrade  # alembic loads only in a process that migrates

    upgrade(connection)


def _announce(settings: Settings, spec: ServiceSpec) -> AbstractAsyncContextManager[None]:
    from llmdocs.services.discovery.client import self_registration  # at start-up, not import

    return self_registration(settings, spec)


async def _memberships(app: FastAPI, principal: Principal) -> Memberships:
    """A caller's spaces, as the doc-store (which keeps them) tells the caller itself:
    asked with the caller's own delegated token, so no service learns more than they."""
    from llmdocs.core.auth import delegated_token
    from llmdocs.services.docstore.client import DocStoreClient

    settings: Settings = app.state.settings
    token = delegated_token(settings, app.state.spec.key, principal)
    try:
        async with DocStoreClient.for_service(settings, token=token) as client:
            return await client.my_spaces()
    except ServiceError as exc:
        # fail safe: while the doc-store is out (or refuses us: a misconfiguration), a
        # user is a member of no space (sees `default` alone) for the cache's few
        # seconds; never of more
        log.warning("space_memberships_unavailable", subject=principal.subject,
                    error=str(exc)[:300])
        return {}


# what the kernel gets from the house: its migrations, self-registration, and where a
# caller's space memberships come from (the doc-store reads its own table instead)
HOOKS = Hooks(upgrade=_upgrade, announce=_announce, memberships=_memberships)


def spec_of(key: str) -> ServiceSpec:
    spec: ServiceSpec = importlib.import_module(f"llmdocs.services.{key}").spec
    return spec


def all_specs() -> list[ServiceSpec]:
    return [spec_of(key) for key in SERVICE_NAMES]


def resolve(name: str) -> ServiceSpec:
    """A spec by key or by the name people use: `docstore` or `doc-store`."""
    for spec in all_specs():
        if name in (spec.key, spec.name):
            return spec
    known = ", ".join(spec.name for spec in all_specs())
    raise KeyError(f"unknown service {name!r}; known: {known}")


def builtin(name: str) -> str | None:
    """The key of the llmdocs service `name` (a key or a name) means, else None: these
    names are reserved for llmdocs' own services in the registry."""
    try:
        return resolve(name).key
    except KeyError:
        return None


def create_app(
    key: str, settings: Settings | None = None, resources: Resources | None = None
) -> FastAPI:
    return create_service_app(spec_of(key), settings, resources, hooks=HOOKS)
