"""The seven services. Each package declares its `spec` and `create_app`."""

from __future__ import annotations

import importlib

from fastapi import FastAPI

from llmdocs.core.app import create_service_app
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.core.resources import Resources
from llmdocs.core.service import ServiceSpec


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
    return create_service_app(spec_of(key), settings, resources)
