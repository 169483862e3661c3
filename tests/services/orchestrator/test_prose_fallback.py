"""The prose a section falls back to is built from the spec alone, and it passes the
same check the model's sentences must pass."""

from __future__ import annotations

from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from llmdocs.claims import CheckContext, check_sentence, split_sentences
from llmdocs.examples import user_service_spec
from llmdocs.openapi import SpecBounds, analyse
from llmdocs.services.orchestrator import apidoc
from llmdocs.services.orchestrator.prose import (
    api_call,
    fallback,
    lead,
    spec_facts,
    vocabulary_of,
)

SPEC: dict[str, Any] = yaml.safe_load(user_service_spec())
OPERATIONS = analyse("example", SPEC, SpecBounds()).operations
GROUPED = apidoc.groups(OPERATIONS)
CONTEXT: dict[str, Any] = {
    "api": {"title": "User Service", "version": "1.4.0",
            "description": SPEC["info"]["description"], "security": ["bearerAuth"]},
    "operations": [op.model_dump(by_alias=True) for op in OPERATIONS],
    "prose": spec_facts(SPEC), "sources": []}
SECTIONS = [{"title": "Overview", "kind": "overview"},
            {"title": "Getting started", "kind": "getting_started"},
            {"title": "Users", "kind": "group", "tag": "users"},
            {"title": "Sessions", "kind": "group", "tag": "sessions"}]


def test_getting_started_names_the_scheme_and_a_first_get() -> None:
    """The server and a curl line are the section's reference part, not said twice."""
    assert fallback(SECTIONS[1], CONTEXT, GROUPED) == (
        "Authenticate with `bearerAuth`: "
        "send the `Authorization: Bearer <token>` header. A first call: `GET /users` "
        "(List users).")
    call = api_call(SECTIONS[1], CONTEXT, GROUPED)
    assert call is not None and call.prompt == "api-getting-started"
    assert call.variables["first_call"] == "GET /users: List users"
    assert api_call({"title": "Error codes", "kind": "errors"}, CONTEXT, GROUPED) is None


@pytest.mark.parametrize("section", SECTIONS, ids=[s["title"] for s in SECTIONS])
def test_fallback_prose_passes_the_check(section: dict[str, Any]) -> None:
    vocabulary = vocabulary_of(CONTEXT)
    labels = CheckContext(labels=[s["title"] for s in SECTIONS])
    text = fallback(section, CONTEXT, GROUPED)
    assert text and text not in lead(CONTEXT)
    assert {s: check_sentence(s, vocabulary, labels) for s in split_sentences(text)} == {
        s: [] for s in split_sentences(text)}
