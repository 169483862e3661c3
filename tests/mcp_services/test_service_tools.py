"""A registered service's operations as MCP tools at /mcp/services/{name}, with the
official MCP client over streamable HTTP against a real running service: listed and
called for the caller, read-only unless its allow-list says more, arguments refused
before any call, answers cut to size, and no session without a token."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from badinput import assert_refused
from llmdocs.core.config import Settings
from llmdocs.services.discovery.client import DiscoveryClient
from llmdocs.services.docstore.client import DocStoreClient
from mcp_services.servicetools import BOOKS, Serve, Shop, register, session, start_shop


@pytest.fixture
async def shop(settings: Settings, serve: Serve, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.setenv("LLMDOCS_DISCOVERY_DISCOVER_ON_START", "false")
    monkeypatch.setenv("LLMDOCS_DISCOVERY_WATCH_INTERVAL_SECONDS", "0")
    monkeypatch.setenv("LLMDOCS_MCP_SERVICE_TOOL_MAX_BYTES", "4000")
    return await start_shop(settings, serve)


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content)


async def test_read_only_tools_are_listed_and_called_on_the_real_service(shop: Shop) -> None:
    await register(shop)
    async with session(shop.mcp_url(), shop.token()) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"bookshop__get_book", "bookshop__find_books",
                              "bookshop__whole_catalogue"}  # add_book is a POST
        get_book = tools["bookshop__get_book"]
        assert get_book.input_schema["required"] == ["book_id"]
        assert get_book.annotations is not None and get_book.annotations.read_only_hint

        result = await client.call_tool("bookshop__get_book", {"book_id": "b2"})
    assert not result.is_error, text_of(result)
    assert result.structured_content == {"status": 200, "body": {
        "id": "b2", "title": "Solaris", "author": "Stanisław Lem", "shelf": "SF-3"}}
    assert shop.seen == ["GET /books/b2"]


async def test_a_write_operation_is_a_tool_only_once_allowed(shop: Shop) -> None:
    await register(shop)
    async with session(shop.mcp_url(), shop.token()) as client:
        assert "bookshop__add_book" not in {t.name for t in (await client.list_tools()).tools}
        with pytest.raises(MCPError, match="no tool 'bookshop__add_book'"):
            await client.call_tool("bookshop__add_book",
                                   {"body": {"title": "Ubik", "author": "Philip K. Dick"}})
    assert shop.seen == []  # refused at the call too, not only hidden from the list

    await register(shop, ["add_book", "get_book"])
    async with session(shop.mcp_url(), shop.token()) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"bookshop__add_book", "bookshop__get_book"}
        assert tools["bookshop__add_book"].annotations.read_only_hint is False  # type: ignore[union-attr]
        added = await client.call_tool("bookshop__add_book",
                                       {"body": {"title": "Ubik", "author": "Philip K. Dick"}})
    assert added.structured_content == {"status": 201, "body": {
        "id": "b3", "title": "Ubik", "author": "Philip K. Dick", "shelf": "NEW"}}
    assert shop.seen == ["POST /books"]

    await register(shop)  # a discovery without a list keeps the one set
    async with session(shop.mcp_url(), shop.token()) as client:
        assert "bookshop__add_book" in {t.name for t in (await client.list_tools()).tools}


async def test_a_bad_allow_list_is_refused(shop: Shop) -> None:
    """Naming no operation of the spec: a failed discovery saying so, a 422 from the
    registry; not a list of ids: a 422 from the discovery-agent."""
    async with DiscoveryClient.for_service(shop.settings, token=shop.token()) as d:
        found = await d.discover("bookshop", shop.url, tool_operations=["drop_tables"])
    assert found.status == "failed"
    assert "tool_operations" in (found.error or "") and "drop_tables" in (found.error or "")

    auth = {"Authorization": f"Bearer {shop.token()}"}
    async with httpx.AsyncClient(headers=auth) as http:
        registered = await http.post(
            shop.settings.url_for("orchestrator") + "/registry/services", json={
                "name": "bookshop", "base_url": shop.url, "spec_hash": "d" * 64,
                "operations": [{"operation_id": "a", "method": "get", "path": "/a"}],
                "tool_operations": ["a", "drop_tables"]})
        discovered = await http.post(shop.settings.url_for("discovery") + "/discover", json={
            "name": "bookshop", "base_url": shop.url, "tool_operations": "get_book"})
    assert_refused(registered, "tool_operations")
    assert "drop_tables" in registered.json()["detail"]
    assert_refused(discovered, "tool_operations")
    assert shop.seen == []


async def test_invalid_arguments_are_refused_before_the_call(shop: Shop) -> None:
    await register(shop)
    async with session(shop.mcp_url(), shop.token()) as client:
        missing = await client.call_tool("bookshop__find_books", {})
        wrong = await client.call_tool("bookshop__get_book", {"book_id": 7})
    assert missing.is_error and wrong.is_error
    assert "do not fit tool bookshop__find_books" in text_of(missing)
    assert "'author' is a required property" in text_of(missing)
    assert "7 is not of type 'string'" in text_of(wrong)
    assert shop.seen == []  # the service saw no request


async def test_an_oversize_answer_is_cut_with_a_note(shop: Shop) -> None:
    await register(shop)
    async with session(shop.mcp_url(), shop.token()) as client:
        result = await client.call_tool("bookshop__whole_catalogue", {})
    cut, note = (block.text for block in result.content)  # type: ignore[union-attr]
    assert len(cut.encode()) <= 4000 and cut.startswith('{"status": 200, "body": [{"id": "x0"')
    assert "truncated" in note and "LLMDOCS_MCP_SERVICE_TOOL_MAX_BYTES" in note
    whole = len(json.dumps({"status": 200, "body": [{"id": f"x{n}", "title": "A" * 200}
                                                      for n in range(2000)]}).encode())
    assert f"the answer is {whole} bytes" in note
    assert result.structured_content is None  # no half a JSON document as structure
    assert shop.seen == ["GET /catalogue"]


async def test_an_unauthorised_session_is_refused(shop: Shop) -> None:
    await register(shop)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        async with httpx.AsyncClient() as http:
            answer = await http.post(shop.mcp_url(), headers={
                **headers, "Accept": "application/json, text/event-stream"}, json={
                "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.headers["www-authenticate"].startswith("Bearer")
    with pytest.raises(ExceptionGroup) as refused:  # the official client, turned away
        async with session(shop.mcp_url(), "not-a-token") as client:
            await client.list_tools()
    assert refused.group_contains(MCPError, match="error response")
    assert shop.seen == []


async def test_an_unknown_service_and_a_caller_without_rights(shop: Shop) -> None:
    await register(shop)
    async with session(shop.mcp_url("nowhere"), shop.token()) as client:
        with pytest.raises(MCPError, match="No service named 'nowhere'"):
            await client.list_tools()
    # may read the registry but not call tools (workflows:write): the call is refused
    async with session(shop.mcp_url(), shop.token("user:bob", "workflows:read")) as client:
        assert (await client.list_tools()).tools
        refused = await client.call_tool("bookshop__get_book", {"book_id": "b1"})
    assert refused.is_error and "workflows:write" in text_of(refused)
    assert shop.seen == []


async def test_a_tool_calls_its_own_service_when_two_names_look_alike(shop: Shop) -> None:
    """`book.shop` and `book_shop` make the same tool names: a call on one service's
    endpoint still reaches that service's operation, not the look-alike's."""
    look_alike = {"name": "book.shop", "base_url": shop.url, "spec_hash": "c" * 64,
                  "operations": [{"operation_id": "get_book", "method": "get",
                                  "path": "/elsewhere/{book_id}",
                                  "parameters": [{"name": "book_id", "location": "path",
                                                  "required": True,
                                                  "schema": {"type": "string"}}]}]}
    async with httpx.AsyncClient(base_url=shop.settings.url_for("orchestrator"), headers={
            "Authorization": f"Bearer {shop.token()}"}) as http:
        assert (await http.post("/registry/services", json=look_alike)).status_code == 201
    async with DiscoveryClient.for_service(shop.settings, token=shop.token()) as d:
        assert (await d.discover("book_shop", shop.url)).status == "registered"

    async with session(shop.mcp_url("book_shop"), shop.token()) as client:
        result = await client.call_tool("book_shop__get_book", {"book_id": "b1"})
    assert result.structured_content == {"status": 200, "body": BOOKS["b1"]}
    assert shop.seen == ["GET /books/b1"]


async def test_an_llmdocs_service_judges_the_sessions_caller(
        settings: Settings, serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    """The doc-store's tools act with the session's user's rights: a user without
    docs:read is refused by the doc-store itself, one with it reads the document."""
    monkeypatch.setenv("LLMDOCS_DISCOVERY_DISCOVER_ON_START", "false")
    monkeypatch.setenv("LLMDOCS_DISCOVERY_WATCH_INTERVAL_SECONDS", "0")
    shop = await start_shop(settings, serve, "docstore")
    admin = shop.token("user:admin", "*")
    async with DocStoreClient.for_service(shop.settings, token=admin) as docs:
        stored = await docs.put("The launch plan.", title="plan")
    async with DiscoveryClient.for_service(shop.settings, token=admin) as d:
        found = await d.discover("doc-store", shop.settings.url_for("docstore"))
    assert found.status == "registered", found.error

    url = shop.mcp_url("doc-store")
    tool = "doc-store__get_document_documents__document_id__get"  # FastAPI's operation id
    async with session(url, shop.token("user:mallory", "workflows:*")) as client:
        assert tool in {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool(tool, {"document_id": stored.document_id})
    async with session(url, shop.token("user:ann", "workflows:*", "docs:read")) as client:
        read = await client.call_tool(tool, {"document_id": stored.document_id})
    assert refused.is_error and refused.structured_content is not None
    assert refused.structured_content["status"] == 403
    assert "docs:read" in refused.structured_content["body"]["detail"]
    assert not read.is_error and read.structured_content is not None
    assert read.structured_content["body"]["content"] == "The launch plan."
