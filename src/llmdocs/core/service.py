"""What a service is: its spec, which each `services/<name>/__init__.py` declares."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI

from llmdocs.core.config import Settings
from llmdocs.core.db import SchemaUpgrade
from llmdocs.core.spaces import MembershipLookup

if TYPE_CHECKING:  # importing a spec stays cheap
    from llmdocs.core.privacy import PrivacyFactory

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

MODEL_ANSWER_SECONDS = 300.0  # a model's answer takes longer than a service's


@dataclass(frozen=True)
class Call:
    """A service this one calls, for the kernel to build its client once at start-up;
    the client class is named, not imported, so importing a spec stays cheap."""

    target: str  # the called service's key: "gateway"
    client: str  # its `ServiceClient` subclass: "package.module:Class"
    # seconds its slowest answer may take (a model's, a long poll's); None: the usual
    waits_up_to: float | None = None


@dataclass(frozen=True)
class ServiceSpec:
    key: str  # package and settings name: "docstore" → LLMDOCS_DOCSTORE_URL
    name: str  # the name people use: "doc-store"
    title: str
    description: str
    scope: str  # scope family its routes require: "docs" → docs:read, docs:write
    router: Callable[[], APIRouter]  # built lazily so importing a spec stays cheap
    calls: tuple[Call, ...] = field(default_factory=tuple)  # the services it calls
    # the service's own start-up and shutdown (consumers, watchers, seeds), run once
    # the shared resources and clients are ready in `app.state`
    lifespan: Lifespan | None = None
    # a larger request body is a 413 before it is read; None: the service bounds its own
    max_body_bytes: int | None = None
    # GET route templates whose reads the audit trail records (a document, a prompt)
    audited_reads: frozenset[str] = frozenset()
    # people's browsers connect to it: with mutual TLS on, a client certificate is checked
    # when one comes but not demanded (its pages authenticate by a session cookie)
    browsers: bool = False
    # what it holds about people (core.privacy), built once its resources are ready;
    # None: nothing, and no `/privacy/held` routes
    privacy: PrivacyFactory | None = None


SMALL_REQUESTS = 1024 * 1024  # the limit of a service whose requests are a few fields


# how a started service makes itself known (to the discovery-agent) while it runs
Announce = Callable[[Settings, ServiceSpec], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class Hooks:
    """What the layers above plug into every app, so the kernel imports none of them;
    the services package supplies the house's migrations and self-registration."""

    upgrade: SchemaUpgrade
    announce: Announce
    # a caller's space memberships (core.spaces); None: members of no space but `default`
    memberships: MembershipLookup | None = None
