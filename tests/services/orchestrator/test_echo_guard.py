"""A weak model that repeats its prompt: the write step keeps none of the echoed
instructions and, with nothing of the model's own left, writes a plain sentence from
the spec instead."""

from __future__ import annotations

from typing import Any

import pytest

from ecosystem import store_spec, token
from llmdocs.claims import CheckContext, Vocabulary, check_prose
from llmdocs.core.config import Settings
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from services.orchestrator.fakellm import ecosystem_with

INSTRUCTIONS = ("Keep the facts that matter most", "Use only what the text says",
                "Plain prose, or a short list")


def test_echoed_instructions_are_dropped_and_own_prose_is_kept() -> None:
    sources = "API: User Service 1.0.0\nGET /users: List users"
    variables: dict[str, Any] = {"sources": sources, "max_words": 50}
    prompt = ("Summarise the text below for developers in at most 50 words.\n\n"
              "- Keep the facts that matter most: purpose, main capabilities, key "
              "interfaces, limits.\n- Use only what the text says; do not add opinions or "
              "facts from elsewhere.\n- Plain prose, or a short list if the text is a list "
              f"of items.\n\nText:\n{sources}\n")
    context = CheckContext.of_prompt(prompt, variables)
    vocabulary = Vocabulary.from_texts([sources])
    echoed = ("- Keep the facts that matter most: purpose, main capabilities.\n- Use only "
              "what the text says: no opinions.\n- Plain prose, or a short list if the "
              "text is a list of items.")
    for text in (echoed, prompt):
        checked = check_prose(text, vocabulary, context)
        assert checked.kept == [] and checked.written > 0
    dropped = check_prose(echoed, vocabulary, context).dropped
    assert all("prompt_echo" in d.to_json()["reason"] for d in dropped)
    own = "The User Service manages accounts. It lists users with GET /users."
    checked = check_prose(f"{own}\n- Use only what the text says.", vocabulary, context)
    assert checked.text == own


@pytest.fixture
async def echo_eco(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch
                   ) -> Settings:
    return await ecosystem_with(settings, serve, monkeypatch, echo=True)


async def test_echoed_instructions_never_reach_the_document(echo_eco: Settings) -> None:
    await store_spec(echo_eco)
    async with OrchestratorClient.for_service(echo_eco, token=token(echo_eco)) as runs:
        run = await runs.start_run("document-generation", {
            "query": "Create API documentation for user service",
            "service": "user service"}, wait=60)
    assert run.status == "completed" and run.result, run.error
    assert {c["provider"] for c in run.result["provenance"]["llm_calls"]} == {"fake"}
    async with DocStoreClient.for_service(echo_eco, token=token(echo_eco)) as docs:
        content = (await docs.get(run.result["document_id"])).content or ""
    assert not [i for i in INSTRUCTIONS if i in content]
    assert "User Service (version 1.4.0) has 7 documented endpoints." in content
    assert "`GET /users`" in content
