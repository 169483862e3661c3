"""Shared by the portal's tests: the web service with the services its pages call, on
real HTTP, and a browser-like client signed in through a one-time link."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.web.sessions import sign_in_link
from llmdocs.services.web.settings import WebSettings

# what the search, document and provenance pages call
PAGES_CALL = ("docstore", "orchestrator", "interpreter", "analysis")


async def start_portal(settings: Settings, serve: Any,
                       others: tuple[str, ...] = PAGES_CALL) -> Settings:
    """The web service and `others`, each on its own port, over real HTTP."""
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES}
                              | {"inprocess_calls": False})
    for key in (*others, "web"):
        await serve(create_app(key, eco), port=eco.port_for(key))
    return eco


def token_of(settings: Settings, subject: str = "user:alice") -> str:
    return issue_token(settings, subject, ["*"])


def docs_as(settings: Settings, subject: str = "user:alice") -> DocStoreClient:
    """The doc-store as `subject`, to store what the pages show."""
    return DocStoreClient.for_service(settings, token=token_of(settings, subject))


def link_for(settings: Settings, subject: str = "user:alice", **kwargs: Any) -> str:
    return sign_in_link(settings, WebSettings(), subject, **kwargs)


@asynccontextmanager
async def signed_in(settings: Settings, subject: str = "user:alice",
                    **kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client holding a session of `subject`, made by following a sign-in link."""
    async with httpx.AsyncClient(base_url=settings.url_for("web"), timeout=30) as http:
        answer = await http.get(link_for(settings, subject, **kwargs))
        assert answer.status_code == 303, answer.text
        yield http


def csrf_of(page: str) -> str:
    """The CSRF token a page's forms carry."""
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)
