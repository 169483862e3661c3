"""The quality gate says no: to a document that lacks a checklist item of an operation,
and to one with a single claim the spec does not support (the document check's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmdocs.claims import Vocabulary
from llmdocs.examples import user_service_spec
from llmdocs.openapi import SpecBounds, parse_spec
from llmdocs.openapi import markdown as md
from llmdocs.openapi.reference import Reference, build_reference
from llmdocs.services.orchestrator.gate import api_verdict, check, prose_acceptance
from openapi.test_real_specs import document

BOUNDS = SpecBounds()
SPEC = parse_spec(user_service_spec().encode(), BOUNDS)
REFERENCE = build_reference(SPEC, BOUNDS)
VOCABULARY = Vocabulary.from_openapi(SPEC)
DOCUMENT = "# User Service\n\n" + "\n\n".join(
    md.operation_block(op, REFERENCE) for op in REFERENCE.operations) + "\n"


def gated(markdown: str, reference: Reference = REFERENCE) -> dict[str, Any]:
    return api_verdict(check(markdown, reference, VOCABULARY), [])


def test_the_spec_s_own_reference_is_complete_and_true() -> None:
    checked = gated(DOCUMENT)
    assert checked["completeness"] == 1.0 and checked["missing"] == []
    assert checked["items"] == len(REFERENCE.operations)
    assert checked["approved"] and checked["truthfulness"] == 1.0 and checked["claims"] > 50


def test_a_lost_parameter_or_example_is_incomplete_and_not_approved() -> None:
    row = next(line for line in DOCUMENT.splitlines() if line.startswith("| `limit` |"))
    damaged = DOCUMENT.replace(row + "\n", "", 1).replace(
        "**Example request**", "Example:", 1)
    checked = gated(damaged)
    assert checked["completeness"] == round(1 - 1 / len(REFERENCE.operations), 4)
    assert checked["missing"] == ["GET /users: parameter limit is missing",
                                  "GET /users: example request is missing"]
    assert checked["missing_ops"] == [REFERENCE.operations[0].operation_id]
    assert not checked["approved"]


def test_one_unsupported_claim_fails_the_gate() -> None:
    told = DOCUMENT.replace("# User Service\n\n",
                            "# User Service\n\nIt is served at 127.0.0.1-6201.\n\n")
    checked = gated(told)
    assert checked["completeness"] == 1.0 and checked["truthfulness"] < 1.0
    assert checked["unsupported"] == ["host: 127.0.0.1-6201"] and not checked["approved"]


def test_an_invented_endpoint_or_a_wrong_status_fails_the_gate() -> None:
    """The gate is the document check: an operation the spec lacks is invented, a status
    the operation does not answer is unsupported where it is said."""
    told = DOCUMENT.replace("# User Service\n\n", "# User Service\n\nCall "
                            "`DELETE /users` to remove every user.\n\n").replace(
        "| `409` |", "| `410` |", 1)
    checked = gated(told)
    assert checked["invented"] == ["DELETE /users"] and not checked["approved"]
    assert checked["unsupported"] == ["operation: DELETE /users", "status: 410"]
    assert "POST /users: response 409 is missing" in checked["missing"]


def test_prose_acceptance_is_kept_over_written_or_none() -> None:
    assert prose_acceptance([{"written": 3, "kept": 1}, {"written": 1, "kept": 0}]) == 0.25
    assert prose_acceptance([{"written": 0, "kept": 0}]) is None


CORPUS = [Path(__file__).parents[2] / "data" / "openapi" / name for name in (
    "jupyter-server.yaml", "readme-legacy.yaml", "petstore-3.1.yaml")] + [
    Path("/work/shared/corpus/openapi/uspto.yaml"),
    Path(__file__).parents[2] / "openapi" / "petstore-v2.json"]


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.stem)
def test_the_reference_of_each_real_spec_passes_the_gate(path: Path) -> None:
    """Made from the spec alone, the reference claims nothing its spec does not state
    (server variables at their defaults, booleans, dotted and wildcard field names,
    multi-word defaults, example values) and lacks no checklist item."""
    spec = parse_spec(path.read_bytes(), BOUNDS)
    reference = build_reference(spec, BOUNDS)
    markdown = document(reference)
    checked = api_verdict(check(markdown, reference, Vocabulary.from_openapi(spec)), [])
    assert checked["unsupported"] == [] and checked["truthfulness"] == 1.0
    assert checked["missing"] == [] and checked["approved"]  # every example made, too


def test_an_example_the_reference_could_not_make_is_missing() -> None:
    unmade = REFERENCE.model_copy(deep=True)
    unmade.operations[1].examples_missing = ["request"]
    op = unmade.operations[1]
    assert gated(DOCUMENT, unmade)["missing"] == [
        f"{op.method.upper()} {op.path}: example request is missing"]


def test_the_document_title_does_not_say_api_twice() -> None:
    from llmdocs.services.orchestrator.apidoc import document_title

    assert document_title("Legacy API") == "Legacy API documentation"
    assert document_title("User Service") == "User Service API documentation"
