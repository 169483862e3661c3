"""The document check says no where a document is wrong: a hand-written document for
the example spec with an invented endpoint, a wrong parameter, status, enum value and
bound, each reported where it is; our generated documents pass whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmdocs.claims import check_document
from llmdocs.claims.phrases import bounds_in, status_meant, tokenize
from llmdocs.examples import user_service_spec
from llmdocs.openapi import SpecBounds, parse_spec
from llmdocs.openapi.reference import build_reference
from openapi.test_real_specs import document

BOUNDS = SpecBounds()
SPEC = parse_spec(user_service_spec().encode(), BOUNDS)
HANDWRITTEN = (Path(__file__).parent / "data" / "user-service-handwritten.md").read_text()
DATA = Path(__file__).parents[1] / "data" / "openapi"
CORPUS = {"user-service": user_service_spec().encode(),
          **{p.stem: p.read_bytes() for p in (
              DATA / "jupyter-server.yaml", DATA / "readme-legacy.yaml",
              DATA / "petstore-3.1.yaml", Path("/work/shared/corpus/openapi/uspto.yaml"),
              Path(__file__).parents[1] / "openapi" / "petstore-v2.json")}}


def line_of(text: str) -> int:
    return next(n for n, line in enumerate(HANDWRITTEN.splitlines(), start=1)
                if text in line)


def test_a_person_s_document_is_told_each_wrong_claim_where_it_is() -> None:
    found = check_document(HANDWRITTEN, SPEC)
    assert [(u.kind, u.claim, u.operation, u.line) for u in found.unsupported] == [
        ("parameter", "sort", "GET /users", line_of("| `sort` |")),
        ("enum", "sort: asc", "GET /users", line_of("| `sort` |")),
        ("enum", "sort: desc", "GET /users", line_of("| `sort` |")),
        ("constraint", "password: maximum length 64", "POST /users",
         line_of("at most 64 characters")),
        ("enum", "role: owner", "GET /users/{user_id}", line_of("or `owner`")),
        ("operation", "GET /users/{user_id}/avatar", None, line_of("avatar")),
        # what is said of an operation the spec lacks is not supported either
        ("status", "200", "GET /users/{user_id}/avatar", line_of("avatar image")),
        ("status", "201", "POST /sessions", line_of("responds with `201`"))]
    assert found.unsupported[0].excerpt.startswith("| `sort` | string |")
    # its sessions section never says 200; the logout is not documented at all
    assert found.missing == ["POST /sessions", "DELETE /sessions/current"]
    assert found.gaps == ["POST /sessions: response 200 is missing",
                          "DELETE /sessions/current: the endpoint is not documented"]
    assert found.claims > 40 and found.supported == found.claims - 8
    assert found.to_json()["scores"] == {"completeness": round(5 / 7, 4),
                                         "truthfulness": round(found.supported / found.claims,
                                                               4)}


def test_what_the_person_got_right_is_supported() -> None:
    """A path written with another parameter name (`{id}`), a call with a value, the
    bounds and values the spec states, a curl example: all supported."""
    right = check_document(HANDWRITTEN.replace(
        "| `sort` | string | Sort order, one of `asc` or `desc`. |\n", "").replace(
        " and at most 64 characters", "").replace("`owner`", "`admin`").replace(
        "`201`;", "`200`;").replace(
        "### GET /users/{user_id}/avatar\n\nReturns the user's avatar image (`200`).\n",
        "Read one with `GET /users/3fa85f64-5717-4562-b3fc-2c963f66afa6`.\n") + (
        "\n### DELETE /sessions/current\n\nLogs out; `204` or `401`.\n"), SPEC)
    assert right.unsupported == [] and right.missing == []
    assert right.to_json()["scores"] == {"completeness": 1.0, "truthfulness": 1.0}


def test_a_terse_document_in_another_style_is_read_as_well() -> None:
    """Operations named by the first paragraph or request under a plain heading, bold
    names in lists, `#### 200 OK` headings, a plain table of a schema's properties: all
    supported; the same document with a wrong bound, status, field and value is told
    each one."""
    terse = (Path(__file__).parent / "data" / "user-service-terse.md").read_text()
    found = check_document(terse, SPEC)
    assert found.unsupported == [] and found.claims > 20
    assert "GET /users" not in found.missing and "POST /users" not in found.missing
    wrong = terse.replace("1 to 100", "1 to 500").replace(
        "#### 401 Unauthorized", "#### 404 Not Found").replace(
        "| name | string | yes | Display name |\n",
        "| name | string | yes | Display name |\n| nickname | string | no | - |\n").replace(
        "`member` or `admin`", "`member` or `owner`")
    assert [(u.kind, u.claim, u.operation) for u in check_document(wrong, SPEC).unsupported
            ] == [("constraint", "limit: maximum 500", "GET /users"),
                  ("status", "404", "GET /users"), ("field", "nickname", "POST /users"),
                  ("enum", "role: owner", None)]


@pytest.mark.parametrize("name", CORPUS)
def test_our_generated_documents_are_wholly_supported_and_complete(name: str) -> None:
    spec = parse_spec(CORPUS[name], BOUNDS)
    found = check_document(document(build_reference(spec, BOUNDS)), spec)
    assert found.unsupported == [] and found.missing == [] and found.claims > 50
    assert found.to_json()["scores"] == {"completeness": 1.0, "truthfulness": 1.0}


def test_an_operation_left_out_is_missing() -> None:
    reference = build_reference(SPEC, BOUNDS)
    text = document(reference)
    start = text.index("### `PATCH /users/{user_id}`")
    cut = text[:start] + text[text.index("\n### ", start + 1):]
    found = check_document(cut, SPEC)
    assert found.missing == ["PATCH /users/{user_id}"] and found.unsupported == []
    assert found.completeness == 6 / 7


def test_a_template_matches_by_shape_but_a_literal_segment_must_match() -> None:
    said = ("# API\n\n## `DELETE /sessions/{id}`\n\nEnds a session.\n\n"
            "## `GET /users/{id}`\n\nOne user, `404` if there is none.\n")
    found = check_document(said, SPEC)
    assert [(u.kind, u.claim) for u in found.unsupported] == [
        ("operation", "DELETE /sessions/{id}")]
    # its path parameter is shown by the path, its 404 said; only its 200 is not
    assert "GET /users/{user_id}: response 200 is missing" in found.gaps
    assert not any(gap.startswith("GET /users/{user_id}: parameter") for gap in found.gaps)


@pytest.mark.parametrize(("text", "said"), [
    ("Between 1 and 10 items.", ["minimum items 1", "maximum items 10"]),
    ("at most 50 characters", ["maximum length 50"]),
    ("default: `20`; 1 ≤ value ≤ 100", ["minimum 1", "maximum 100"]),
    ("length 1 to 50", ["minimum length 1", "maximum length 50"]),
    ("The maximum is 100.", ["maximum 100"]),
    ("At least 12 characters.", ["minimum length 12"]),
    ("A page of users, newest first.", []),
])
def test_bounds_are_read_from_words(text: str, said: list[str]) -> None:
    assert [str(bound) for bound in bounds_in(text)] == said


@pytest.mark.parametrize(("text", "meant"), [
    ("It returns 404 when the user is gone.", True),
    ("It returns 100 users per page.", False),
    ("The answer is 404 Not Found.", True),
    ("`404` if there is none", True),
    ("default: `100`", False),
])
def test_a_number_is_a_status_only_where_one_is_meant(text: str, meant: bool) -> None:
    tokens = tokenize(text)
    at = next(i for i, t in enumerate(tokens) if t.core in ("404", "100"))
    assert status_meant(tokens, at) is meant


HOSTILE = ["GET /a/{b}/c " * 40 + "\n", "| `x` | 404 | one of `a` `b` at most 5 |\n",
           "`" * 7 + "\n", "#" * 9 + " x\n", "### `GET /users`\n",
           "- `limit`: between 1 and " * 5 + "\n",
           "curl -X GET https://api.example.com/v1/users \\\n",
           "((([[[{{{<<<" * 20 + "\n", "returns 404 Not Found " * 10 + "\n"]


@pytest.mark.parametrize("one_line", [False, True], ids=["lines", "one line"])
def test_a_megabyte_of_hostile_text_is_read_to_the_end(one_line: bool) -> None:
    """Each reading is a pass over tokens with a fixed look-around: a megabyte of every
    shape above, as lines or as one line, is read whole and its claims counted."""
    piece = "".join(HOSTILE)
    hostile = piece * (1_000_000 // len(piece))
    found = check_document(hostile.replace("\n", " ") if one_line else hostile, SPEC)
    assert found.claims > 10_000 and len(found.unsupported) > 1_000


def test_the_json_has_the_issue_s_shape() -> None:
    answer: dict[str, Any] = check_document(HANDWRITTEN, SPEC).to_json()
    assert list(answer) == ["claims", "supported", "unsupported", "missing", "scores"]
    assert list(answer["unsupported"][0]) == ["kind", "claim", "operation", "line",
                                              "excerpt"]


def test_a_model_sentence_is_judged_as_the_gate_will_judge_it() -> None:
    """The prose filter with the spec's operations drops a sentence that gives an
    operation a status only another one answers; the flat vocabulary alone keeps it."""
    from llmdocs.claims import CheckContext, SpecIndex, Vocabulary, check_sentence

    vocabulary = Vocabulary.from_openapi(SPEC)
    spec = CheckContext(spec=SpecIndex(build_reference(SPEC, BOUNDS)))
    wrong = "A call of `GET /users` returns `404` when the page is gone."
    right = "A call of `GET /users/{user_id}` returns `404` when the user is gone."
    assert check_sentence(wrong, vocabulary) == []
    assert [str(r) for r in check_sentence(wrong, vocabulary, spec)] == [
        "unsupported_status: 404"]
    assert check_sentence(right, vocabulary, spec) == []


@pytest.mark.parametrize(("item", "statuses"), [
    ("- 401 — no token", ["401"]), ("- **200**: the page", ["200"]),
    ("- 404 Not Found", ["404"]), ("- `404`", ["404"]),
    ("- 100 requests per minute at most.", []),
])
def test_a_list_item_s_leading_number_is_a_status_when_said_as_one(
        item: str, statuses: list[str]) -> None:
    found = check_document(f"## GET /users\n\n{item}\n", SPEC)
    said = [u.claim for u in found.unsupported if u.kind == "status"]
    assert said == [s for s in statuses if s not in ("401", "200")]  # GET /users has those
    assert ("GET /users: response 401 is missing" in found.gaps) is ("401" not in statuses)
