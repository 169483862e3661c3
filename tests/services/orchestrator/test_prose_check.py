"""A model that writes the defects a review found: the write step keeps none of them,
says in provenance why each sentence was dropped, and a section the check leaves empty
is written plainly from the spec."""

from __future__ import annotations

from typing import Any

import pytest

from ecosystem import store_spec, token
from llmdocs.core.config import Settings
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from services.orchestrator.fakellm import ecosystem_with

SOUND = "It lets a developer list, create and delete accounts and log users in."
LEAD = "User Service (version 1.4.0) has 7 documented endpoints."  # said by the lead
DEFECTS = {  # sentence: the reason it must be dropped for
    "The User Service API is available in the 127.0.0.1-6201 address.": "unsupported_host",
    "Overview, Authentication, Users, Sessions, Endpoint summary.": "labels_only",
    "Your document is incomplete.": "talks_to_reader",
    "Please provide a section of the outline.": "talks_to_reader",
    "The endpoint is:": "cut_off",
    "This is the User Service API API documentation.": "doubled_word",
    "Remove the avatar with `DELETE /users/{user_id}/avatar`.": "unsupported_path",
    "The sessions operations log a user in and o": "cut_off",
    "Send requests to https://api.example.org/v2 with your key.": "unsupported_url",
}


def defective_model(prompt: str) -> str:
    """Each prose prompt answered with defects; only the overview gets a sound line."""
    if "Describe what an API is for" in prompt:
        return ("The User Service API is available in the 127.0.0.1-6201 address.\n"
                f"Overview, Authentication, Users, Sessions, Endpoint summary. {SOUND}")
    if "make a first call" in prompt:
        return "Send requests to https://api.example.org/v2 with your key."
    if '"users" operations' in prompt:
        return ("Your document is incomplete. Please provide a section of the outline.\n"
                "The endpoint is:\nThe endpoint is:\n"
                "This is the User Service API API documentation.")
    return ("Remove the avatar with `DELETE /users/{user_id}/avatar`.\n"
            f"{SOUND}\nThe sessions operations log a user in and o\n{LEAD}")


@pytest.fixture
async def defective_eco(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch
                        ) -> Settings:
    return await ecosystem_with(settings, serve, monkeypatch, writes=defective_model)


async def test_defective_prose_never_reaches_the_document(defective_eco: Settings) -> None:
    await store_spec(defective_eco)
    async with OrchestratorClient.for_service(defective_eco,
                                              token=token(defective_eco)) as runs:
        run = await runs.start_run("document-generation", {
            "query": "Create API documentation for user service",
            "service": "user service"}, wait=60)
    assert run.status == "completed" and run.result, run.error
    async with DocStoreClient.for_service(defective_eco, token=token(defective_eco)) as docs:
        stored = await docs.get(run.result["document_id"])
    content = stored.content or ""
    assert [d for d in DEFECTS if d.rstrip(".:") in content] == []
    assert content.count(SOUND) == 1  # kept in the overview, a repeat in Sessions
    # the users intro had nothing left: plain prose from the spec instead
    assert "The Users group has 5 operations." in content

    assert stored.provenance is not None
    prose = {p["section"]: p for p in stored.provenance["prose"]}
    assert set(prose) == {"Overview", "Getting started", "Users", "Sessions"}
    assert [(p["written"], p["kept"], p["fallback"]) for p in prose.values()] == [
        (3, 1, False), (1, 0, True), (5, 0, True), (4, 0, True)]
    dropped = {d["sentence"]: d["reason"] for p in prose.values() for d in p["dropped"]}
    assert set(dropped) == set(DEFECTS) | {SOUND, LEAD}
    for sentence, code in DEFECTS.items():
        assert dropped[sentence].startswith(code) or f"; {code}" in dropped[sentence], (
            sentence, dropped[sentence])
    assert dropped[SOUND].startswith("repeated") and dropped[LEAD].startswith("repeated")
    assert content.count(LEAD) == 1
