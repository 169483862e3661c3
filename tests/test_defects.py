"""The independent prose check (tests/defects.py) on hand-written bad and good sentences,
the review's real quotes among them."""

from __future__ import annotations

from typing import Any

import pytest

from defects import check, prose, truthfulness

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "User Service", "version": "1.0",
             "description": "Manages the users of the shop"},
    "servers": [{"url": "https://api.example.com/v1"}],
    "tags": [{"name": "users"}, {"name": "orders"}],
    "paths": {
        "/users": {"get": {"tags": ["users"], "summary": "List users", "parameters": [
            {"name": "limit", "in": "query",
             "schema": {"type": "integer", "default": 20, "maximum": 100}},
            {"name": "sort_order", "in": "query",
             "schema": {"type": "string", "enum": ["asc", "desc"]}}],
            "responses": {"200": {"description": "The users"}}}},
        "/users/{userId}": {"get": {"tags": ["users"], "summary": "Get a user",
                                    "responses": {"200": {"description": "The user"},
                                                  "404": {"description": "No such user"}}}},
        "/orders": {"post": {"tags": ["orders"], "summary": "Place an order",
                             "responses": {"201": {"description": "Placed"}}}},
    },
}
HEADINGS = "# User Service\n\n## Overview\n\n## Getting started\n\n## Users\n\n## Orders\n\n"


def reasons(paragraphs: str) -> list[str]:
    return [d.reason for d in check(HEADINGS + paragraphs, SPEC)]


GOOD = [
    "The User Service manages the users of the shop and their orders.",
    "Send requests to https://api.example.com/v1 and pass `limit` to page through users.",
    "List users with `GET /users`; `limit` defaults to 20 and may be at most 100.",
    "Fetch one user from /users/42 with its `userId`; an unknown one answers 404.",
    "Set `sort_order` to `asc` or `desc` to choose the order of the list.",
    "Place an order with `POST /orders`, which answers 201 when it is placed.",
    "- Call the users endpoint first to see what the service returns.",
    "Its 3 operations come in two groups; the users group has 2 of them.",
]

BAD = [  # (paragraph, the reason's start)
    ("The API of the User Service is available in the 127.0.0.1-6201 address.",
     "unsupported host 127.0.0.1-6201"),
    ("Your document is incomplete. Please provide a section of the outline to write.",
     "talks to the reader"),
    ("The endpoint is: `GET /users`.\n\nThe endpoint is: `GET /users`.",
     "repeated sentence"),
    ("Use the users endpoint to list every user the shop has and then retur",
     "cut off"),
    ("Sources (the only facts you may use): the spec of the service.", "prompt echo"),
    ("This is the User Service API API documentation.", "doubled word: api"),
    ("Overview, Getting started, Users, Orders.", "headings or labels only"),
    ("Requests go to https://staging.example.org/v2 first.", "unsupported URL"),
    ("Delete a user with `DELETE /accounts/{id}` when it leaves.", "unsupported path"),
    ("The list holds at most 250 users per page.", "unsupported number 250"),
    ("An unknown user answers 418 from the service.", "unsupported number 418"),
    ("The service has 5 operations for its users.", "unsupported number 5"),
    ("Filter the list by `createdAfter` to see new users.", "unsupported name"),
    ("Each user has an id and a name that the shop keeps for every order it takes. "
     "A user has an id and a name that the shop keeps for every order it takes.",
     "repeated phrase"),
    ("As an AI language model, I cannot see the service.", "talks to the reader"),
    ("Here is the documentation you asked for, about the users.", "talks to the reader"),
    ("Users can place orders with the", "cut off"),
    ("It lets users manage their own accounts, and manage their own accounts too.",
     "repeated phrase within the sentence"),
    ("Overview: User Service 1.0 Authentication: Sessions: Endpoint summary:",
     "headings or labels only"),
    ("User Service 1.0 User Service 1.0", "doubled phrase"),
]


@pytest.mark.parametrize("sentence", GOOD)
def test_a_good_sentence_passes(sentence: str) -> None:
    assert reasons(sentence) == []


@pytest.mark.parametrize(("paragraph", "reason"), BAD)
def test_each_defect_is_found_and_named(paragraph: str, reason: str) -> None:
    found = reasons(paragraph)
    assert found, f"no defect found in {paragraph!r}"
    assert any(r.startswith(reason) for r in found), found


def test_a_doubled_word_in_a_heading_is_found() -> None:
    found = check("# User Service API API documentation\n\nThe shop keeps users.\n", SPEC)
    assert [d.reason for d in found] == ["doubled word in a heading: api"]


def test_the_good_sentences_together_pass() -> None:
    assert reasons("\n\n".join(GOOD)) == []


def test_only_prose_is_read_not_the_reference_around_it() -> None:
    reference = (
        "### `GET /users`\n\n| Name | In |\n|---|---|\n| `limit` | query |\n\n"
        "```json\n{\"users\": [], \"next\": 127.0.0.1}\n```\n\n"
        "- `sort_order` (query): asc or desc\n**Base URL:** https://api.example.com/v1\n\n"
        "> Example responses\n\n<aside class=\"warning\">\nPlease provide a token\n</aside>\n\n"
        "Status Code **200**\n\nxor\n\nThe shop keeps every user here.\n")
    assert [p.text for p in prose(reference)] == ["The shop keeps every user here."]
    assert check(reference, SPEC) == []


def test_the_spec_s_own_sentences_are_not_held_against_the_document() -> None:
    spec = {**SPEC, "info": {**SPEC["info"], "description": "Manages the users of the shop"}}
    twice = "Manages the users of the shop\n\nManages the users of the shop\n"
    assert check(twice, spec) == []


def test_a_spec_sentence_cut_short_is_not_the_spec_s_own() -> None:
    spec = {**SPEC, "info": {**SPEC["info"], "description":
                             "For this sample, you can use the api key `special-key` to test."}}
    whole = "For this sample, you can use the api key `special-key` to test.\n"
    assert check(whole, spec) == []
    cut = "For this sample, you can use the api key `\n"
    assert [d.reason for d in check(cut, spec)] == ["cut off"]


def test_truthfulness_counts_supported_claims_and_named_endpoints() -> None:
    markdown = ("### `GET /users`\n\n### `DELETE /users`\n\n"
                "Call https://api.example.com/v1/users with `limit` up to 100 or 500.\n")
    # prose: URL ok, limit ok, 100 ok, 500 not; endpoints: GET /users ok, DELETE /users's
    # path is the spec's (the method is the reference's business, checked by coverage)
    assert truthfulness(markdown, SPEC) == (5, 6)
