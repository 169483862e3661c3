"""The kernel's privacy routes: scope, pseudonym, erasure checks, over real HTTP."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from llmdocs.core.app import create_service_app
from llmdocs.core.auth import issue_token
from llmdocs.core.client import Forbidden, ServiceClient, Unprocessable
from llmdocs.core.config import Settings
from llmdocs.core.logging import log_formatter
from llmdocs.core.privacy import Erasure, PrivacyClient, Records, pseudonym
from llmdocs.core.service import ServiceSpec
from llmdocs.services import HOOKS


class Notes:
    """A service's notes, by who wrote them: what the kernel's routes reach."""

    def __init__(self) -> None:
        self.notes: dict[str, list[str]] = {"alice": ["alice's note"], "bob": ["bob's"]}
        self.erasures: list[Erasure] = []

    async def export(self, subject: str) -> Records:
        return {"notes": [{"text": text} for text in self.notes.get(subject, [])]}

    async def erase(self, erasure: Erasure) -> dict[str, int]:
        self.erasures.append(erasure)
        return {"notes deleted": len(self.notes.pop(erasure.subject, []))}


NOTES = Notes()


def notes_of(_app: FastAPI) -> Notes:
    return NOTES


SPEC = ServiceSpec(key="analysis", name="notes", title="Notes", description="notes",
                   scope="notes", router=APIRouter, privacy=notes_of)


def client(url: str, settings: Settings, *scopes: str, roles: tuple[str, ...] = ()
           ) -> PrivacyClient:
    token = issue_token(settings, "user:root", scopes, roles=roles)
    return PrivacyClient(ServiceClient(url, service="analysis", token=token))


@pytest.fixture
async def notes(serve: Any, settings: Settings) -> Any:
    return await serve(create_service_app(SPEC, settings, hooks=HOOKS))


def test_the_pseudonym_is_stable_keyed_and_tells_subjects_apart(settings: Settings) -> None:
    first = pseudonym(settings, "alice")
    assert first == pseudonym(settings, "alice") != pseudonym(settings, "bob")
    assert first.startswith("pseudonym:") and len(first) == len("pseudonym:") + 16
    other = Settings(data_dir=settings.data_dir, jwt_secret="another-secret-" * 3)
    assert pseudonym(other, "alice") != first  # without the key, no guess can be tested


async def test_an_admin_exports_and_erases_once(notes: Any, settings: Settings) -> None:
    admin = client(notes.url, settings, roles=("admin",))
    assert await admin.export("alice") == {"notes": [{"text": "alice's note"}]}
    assert await admin.export("nobody") == {"notes": []}
    erasure = Erasure("alice", pseudonym(settings, "alice"), "delete", None)
    assert await admin.erase(erasure) == {"notes deleted": 1}
    assert await admin.erase(erasure) == {"notes deleted": 0}
    assert NOTES.erasures[-1] == erasure
    await admin.client.aclose()


async def test_only_privacy_admins_reach_what_is_held(notes: Any, settings: Settings) -> None:
    editor = client(notes.url, settings, roles=("editor",))
    with pytest.raises(Forbidden):
        await editor.export("bob")
    with pytest.raises(Forbidden):
        await editor.erase(Erasure("bob", pseudonym(settings, "bob"), "delete", None))
    assert await client(notes.url, settings, "privacy:admin").export("bob") == {
        "notes": [{"text": "bob's"}]}
    async with httpx.AsyncClient(base_url=notes.url) as http:
        assert (await http.get("/privacy/held/bob")).status_code == 401
    await editor.client.aclose()


async def test_a_bad_erasure_is_refused_with_its_field(notes: Any, settings: Settings) -> None:
    admin = client(notes.url, settings, "privacy:admin")
    for erasure, field in (
        (Erasure("bob", pseudonym(settings, "bob"), "transfer", None), "transfer_to"),
        (Erasure("bob", pseudonym(settings, "bob"), "transfer", "bob"), "transfer_to"),
        (Erasure("bob", pseudonym(settings, "alice"), "delete", None), "pseudonym"),
    ):
        with pytest.raises(Unprocessable) as refused:
            await admin.erase(erasure)
        assert [e["field"] for e in refused.value.problem["errors"]] == [field]
    assert "bob" in NOTES.notes
    await admin.client.aclose()


async def test_the_request_log_names_the_route_not_the_person(notes: Any,
                                                              settings: Settings) -> None:
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(log_formatter("json"))
    logging.getLogger().addHandler(handler)
    admin = client(notes.url, settings, "privacy:admin")
    try:
        await admin.export("carol")
        await admin.erase(Erasure("carol", pseudonym(settings, "carol"), "delete", None))
    finally:
        logging.getLogger().removeHandler(handler)
        await admin.client.aclose()
    requests = [line for line in map(json.loads, sink.getvalue().splitlines())
                if line["event"] == "request"]
    assert {(line["method"], line["path"]) for line in requests} == {
        ("GET", "/privacy/held/{subject:path}"), ("DELETE", "/privacy/held/{subject:path}")}
    made = [line["event"] for line in map(json.loads, sink.getvalue().splitlines())
            if line["logger"] == "httpx"]  # the calls' own lines, as a service makes them
    assert made and all("/privacy/held/{subject}" in line for line in made)
    assert "carol" not in sink.getvalue()
