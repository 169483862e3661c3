"""The claim checker pinned on the defects a review found in model prose (its exact
quotes among them) and on sentences a developer would keep."""

from __future__ import annotations

from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from llmdocs.claims import (
    CheckContext,
    Vocabulary,
    check_prose,
    check_sentence,
    claims_of,
    prose_units,
    split_sentences,
    truthfulness,
)
from llmdocs.examples import user_service_spec

SPEC: dict[str, Any] = yaml.safe_load(user_service_spec())
VOCABULARY = Vocabulary.from_openapi(SPEC)
PROMPT = ("You write one section of a technical document.\n\nSources (the only facts you "
          "may use):\n{sources}\n\nRules:\n- Start with the section heading.\n- Use only "
          "facts found in the sources. Never invent endpoints, parameters, fields.\n")
SOURCES = "GET /users: List users\nPOST /users: Create a user"
CONTEXT = CheckContext.of_prompt(PROMPT.format(sources=SOURCES), {"sources": SOURCES},
                                 ["Overview", "Authentication", "Users", "Sessions",
                                  "Endpoint summary"])


def codes(sentence: str) -> set[str]:
    return {r.code for r in check_sentence(sentence, VOCABULARY, CONTEXT)}


@pytest.mark.parametrize(("sentence", "code"), [
    # the review's quotes
    ("The API of the User Service is available in the 127.0.0.1-6201 address.",
     "unsupported_host"),
    ("Your document is incomplete.", "talks_to_reader"),
    ("Please provide a section of the outline so that I can write it.", "talks_to_reader"),
    ("Overview, Authentication, Users, Sessions, Endpoint summary.", "labels_only"),
    ("The endpoint is:", "cut_off"),
    ("The API lists the users of the platfo", "cut_off"),
    ("Sources (the only facts you may use): the users.", "prompt_echo"),
    ("POST /users: Create a user", "prompt_echo"),  # its input, copied
    ("This is the User Service API API documentation.", "doubled_word"),
    # each claim kind, invented
    ("Requests go to https://api.example.org/v2 for the users.", "unsupported_url"),
    ("Call `DELETE /users/{user_id}/avatar` to remove the avatar.", "unsupported_path"),
    ("Replace a user with PUT on the user.", "unsupported_method"),
    ("The API answers `418` when the user is a teapot.", "unsupported_status"),
    ("A page holds at most 1000 users.", "unsupported_number"),
    ("Set the `nickname` field to the user's nickname.", "unsupported_name"),
    ("Set `role` to `superuser` for full access.", "unsupported_name"),
    # shape
    ("## Overview", "not_prose"),
    ("The endpoint is: the endpoint is: the endpoint is: the list of users.",
     "repeated_phrase"),
    ("In this section we describe the users of the API.", "talks_to_reader"),
    ("Here is the overview of the API for you.", "talks_to_reader"),
    ("This is a simple example of a REST API using the GET method to retrieve a user's "
     "profile information.", "talks_to_reader"),  # the local model, on the example spec
    (" ".join(["The user has a name and an e-mail address."] * 7), "too_long"),
])
def test_a_defective_sentence_is_dropped_with_its_reason(sentence: str, code: str) -> None:
    assert code in codes(sentence)


@pytest.mark.parametrize("sentence", [
    "Send `GET /users/{id}` with the `Authorization: Bearer` header.",
    "Send the `Authorization: Bearer <token>` header with each request.",
    "The API answers `404` when the user does not exist.",
    "Requests go to `https://api.example.com/v1`, e.g. `https://api.example.com/v1/users`.",
    "Create a user with `POST /users`; the `role` is `member` or `admin`.",
    "Version 1.4.0 of the User Service has 7 operations in 2 groups.",
    "Fetch one user with GET /users/42 and log in with `POST /sessions`.",
    "The `NewUser.password` field takes the user's password.",
    "Send the request with the access token; the request body is the new user.",
    "It manages the user accounts of the platform and their sessions.",
])
def test_a_sound_sentence_is_kept(sentence: str) -> None:
    assert check_sentence(sentence, VOCABULARY, CONTEXT) == []


def test_the_prose_of_a_section_keeps_only_its_sound_sentences() -> None:
    answer = ("## Users\n\nThe users operations manage the accounts of the platform. "
              "The endpoint is: The endpoint is:\n- Your document is incomplete.\n"
              "The users operations manage the accounts of the platform.\n"
              "They list and create accounts with `GET /users` and `POST /users`.")
    checked = check_prose(answer, VOCABULARY, CONTEXT)
    assert checked.kept == [
        "The users operations manage the accounts of the platform.",
        "They list and create accounts with `GET /users` and `POST /users`."]
    assert checked.written == 6
    reasons = [d.to_json()["reason"] for d in checked.dropped]
    assert reasons[0].startswith("not_prose") and reasons[3].startswith("repeated:")
    assert any("talks_to_reader" in r for r in reasons)


def test_a_long_phrase_said_again_in_a_later_section_is_a_repeat() -> None:
    from llmdocs.claims import Repeats
    said = Repeats()
    first = check_prose("Each user of the platform has an account with a role.", VOCABULARY,
                        CONTEXT, said)
    again = check_prose("Remember that each user of the platform has an account.",
                        VOCABULARY, CONTEXT, said)
    assert first.kept and not again.kept
    assert again.dropped[0].to_json()["reason"] == (
        "repeated_phrase: each user of the platform")


def test_sentences_split_where_a_reader_would() -> None:
    assert split_sentences(
        "Use e.g. version 1.2.0 at https://api.example.com/v1. Call `a.b()` first. Stop "
        "etc. Then go! A tail") == [
        "Use e.g. version 1.2.0 at https://api.example.com/v1.", "Call `a.b()` first.",
        "Stop etc.", "Then go!", "A tail"]
    assert prose_units("# Head\nOne. Two\nthree.\n- item\n2. next\n```\nx\n```\n| a |") == [
        "# Head", "One.", "Two", "three.", "item", "next", "```\nx\n```", "| a |"]


def test_claims_are_extracted_by_kind() -> None:
    found = [(c.kind, c.text) for c in claims_of(
        "Send `GET /users/{user_id}` to https://api.example.com/v1 (or 10.0.0.1:80); "
        "it answers 404 after 30 seconds, with `created_at` and userId and `role`.")]
    assert found == [("method", "GET"), ("path", "/users/{user_id}"),
                     ("url", "https://api.example.com/v1"), ("host", "10.0.0.1:80"),
                     ("status", "404"), ("number", "30"), ("name", "created_at"),
                     ("name", "userId"), ("name", "role")]


def test_a_vocabulary_survives_json_and_source_texts_bound_claims() -> None:
    assert Vocabulary.from_json(VOCABULARY.to_json()) == VOCABULARY
    sources = Vocabulary.from_texts(["Deploy with `make deploy` on port 8080 of "
                                     "build.internal, see https://docs.example.com/ops."])
    assert check_sentence("Run `make deploy`, which listens on port 8080.", sources) == []
    assert {r.code for r in check_sentence(
        "It listens on port 9090 of build.example.com.", sources)} == {
        "unsupported_number", "unsupported_host"}


def test_truthfulness_counts_the_claims_of_a_whole_document() -> None:
    document = ("# User Service\n\n31. Requests go to `https://api.example.com/v1`.\n\n"
                "| method | path |\n|---|---|\n| `GET` | `/users/{user_id}` |\n\n"
                "It also answers on 127.0.0.1-6201.\n\n```json\n{\"id\": 42, \"role\": "
                "\"member\"}\n```\n\n```sh\ncurl -X GET https://api.example.com/v1/users\n"
                "curl -X GET https://evil.example.net/x\n```\n")
    supported, total, unsupported = truthfulness(document, VOCABULARY)
    assert unsupported == ["host: 127.0.0.1-6201", "url: https://evil.example.net/x"]
    assert (supported, total) == (total - 2, 8)
    assert truthfulness(document, VOCABULARY).ratio == 6 / 8


def test_text_that_only_looks_like_a_url_is_no_crash() -> None:
    """The Petstore 3.1 spec's text holds such a "URL"; urlsplit refuses it."""
    spec = {"openapi": "3.1.0", "info": {"title": "t", "version": "1", "description":
                                         "Try http://[::1 or https://[fe80::1%25eth0]:x/a."},
            "paths": {"/pets": {"get": {"responses": {"200": {"description": "ok"}}}}}}
    vocabulary = Vocabulary.from_openapi(spec)
    assert {r.code for r in check_sentence("Send it to http://[::2/pets now.", vocabulary)
            } == {"unsupported_url"}
