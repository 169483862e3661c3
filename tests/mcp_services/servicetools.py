"""What the service-tools tests share: a small real bookshop service that records every
request it receives, an ecosystem (orchestrator, discovery-agent, interpreter) serving
`/mcp/services/{name}`, and an MCP client session for a token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
from fastapi import FastAPI, Request
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import BaseModel

from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from llmdocs.services.discovery.client import DiscoveryClient

Serve = Callable[..., Awaitable[Any]]
BOOKS = {"b1": {"id": "b1", "title": "The Left Hand of Darkness", "author": "Ursula K. Le Guin",
                "shelf": "SF-7"},
         "b2": {"id": "b2", "title": "Solaris", "author": "Stanisław Lem", "shelf": "SF-3"}}


class NewBook(BaseModel):
    title: str
    author: str


def bookshop(seen: list[str]) -> FastAPI:
    """A third-party service: its OpenAPI document, a read, a search, a write and a huge
    answer; every request it receives is recorded as `METHOD path`, and any credential
    it is sent as `Authorization on path`."""
    api = FastAPI(title="bookshop", version="1")

    @api.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        if request.url.path not in ("/health", "/openapi.json"):
            seen.append(f"{request.method} {request.url.path}")
        if "authorization" in request.headers:  # no llmdocs token may ever come here
            seen.append(f"Authorization on {request.url.path}")
        return await call_next(request)

    @api.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    @api.get("/books/{book_id}", operation_id="get_book", summary="One book by its id")
    async def get_book(book_id: str) -> dict[str, str]:
        return BOOKS[book_id]

    @api.get("/books", operation_id="find_books", summary="Books by an author")
    async def find_books(author: str) -> list[dict[str, str]]:
        return [b for b in BOOKS.values() if author.lower() in b["author"].lower()]

    @api.post("/books", operation_id="add_book", summary="Add a book", status_code=201)
    async def add_book(book: NewBook) -> dict[str, str]:
        return {"id": "b3", **book.model_dump(), "shelf": "NEW"}

    @api.get("/catalogue", operation_id="whole_catalogue", summary="Every book, at length")
    async def catalogue() -> list[dict[str, str]]:
        return [{"id": f"x{n}", "title": "A" * 200} for n in range(2000)]

    return api


@dataclass
class Shop:
    settings: Settings
    url: str  # the bookshop's
    seen: list[str] = field(default_factory=list)

    def mcp_url(self, name: str = "bookshop") -> str:
        return f"{self.settings.url_for('interpreter')}/mcp/services/{name}"

    def token(self, subject: str = "user:ann", *scopes: str) -> str:
        return issue_token(self.settings, subject,
                           scopes or ("workflows:*", "services:write"))


async def start_shop(settings: Settings, serve: Serve, *also: str) -> Shop:
    """The ecosystem (and the services named in `also`) on free ports and the
    bookshop, not registered yet."""
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES})
    for key in ("orchestrator", "discovery", *also):
        await serve(create_app(key, eco), port=eco.port_for(key))
    await serve(create_app("interpreter", eco),
                port=eco.port_for("interpreter"))
    seen: list[str] = []
    shop = await serve(bookshop(seen))
    return Shop(eco, shop.url, seen)


async def register(shop: Shop, tools: list[str] | None = None) -> None:
    """Discover the bookshop for the user, with an allow-list of tools if given."""
    async with DiscoveryClient.for_service(shop.settings, token=shop.token()) as d:
        found = await d.discover("bookshop", shop.url, tool_operations=tools)
    assert found.status in ("registered", "unchanged"), found.error


@asynccontextmanager
async def session(url: str, token: str) -> AsyncIterator[Client]:
    """An MCP client over streamable HTTP carrying `token`."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                  timeout=httpx2.Timeout(60.0)) as http, \
            Client(streamable_http_client(url, http_client=http)) as client:
        yield client
