"""The quality gate says no: to a document that lacks a checklist item of an operation,
and to one with a single claim the spec does not support."""

from __future__ import annotations

from llmdocs.claims import Vocabulary
from llmdocs.examples import user_service_spec
from llmdocs.openapi import SpecBounds, parse_spec
from llmdocs.openapi import markdown as md
from llmdocs.openapi.reference import build_reference
from llmdocs.services.orchestrator.gate import completeness, prose_acceptance, verdict

BOUNDS = SpecBounds()
SPEC = parse_spec(user_service_spec().encode(), BOUNDS)
REFERENCE = build_reference(SPEC, BOUNDS)
VOCABULARY = Vocabulary.from_openapi(SPEC)
DOCUMENT = "# User Service\n\n" + "\n\n".join(
    md.operation_block(op, REFERENCE) for op in REFERENCE.operations) + "\n"


def test_the_spec_s_own_reference_is_complete_and_true() -> None:
    complete = completeness(DOCUMENT, REFERENCE)
    assert complete.ratio == 1.0 and complete.missing == []
    # per operation: its heading, summary, parameters, body and fields, responses, examples
    assert complete.total > 6 * len(REFERENCE.operations)
    checked = verdict(DOCUMENT, complete, VOCABULARY, [], [])
    assert checked["approved"] and checked["truthfulness"] == 1.0 and checked["claims"] > 50


def test_a_lost_parameter_or_example_is_incomplete_and_not_approved() -> None:
    damaged = DOCUMENT.replace("| `limit` |", "| limit |", 1).replace(
        "**Example request**", "Example:", 1)
    complete = completeness(damaged, REFERENCE)
    assert complete.ratio < 1.0
    assert complete.missing == ["GET /users: parameter limit is missing",
                                "GET /users: example request is missing"]
    assert complete.missing_ops == [REFERENCE.operations[0].operation_id]
    assert not verdict(damaged, complete, VOCABULARY, [], [])["approved"]


def test_one_unsupported_claim_fails_the_gate() -> None:
    told = DOCUMENT.replace("# User Service\n\n",
                            "# User Service\n\nIt is served at 127.0.0.1-6201.\n\n")
    checked = verdict(told, completeness(told, REFERENCE), VOCABULARY, [], [])
    assert checked["completeness"] == 1.0 and checked["truthfulness"] < 1.0
    assert checked["unsupported"] == ["host: 127.0.0.1-6201"] and not checked["approved"]


def test_prose_acceptance_is_kept_over_written_or_none() -> None:
    assert prose_acceptance([{"written": 3, "kept": 1}, {"written": 1, "kept": 0}]) == 0.25
    assert prose_acceptance([{"written": 0, "kept": 0}]) is None
