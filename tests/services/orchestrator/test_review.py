"""The judge's answer counts only in the expected form, and a revision round says what it
changed and loses no section: the summary, often one sentence, used to vanish whole
when that sentence named an endpoint the spec lacks."""

from __future__ import annotations

import json

import pytest

from llmdocs.examples import user_service_spec
from llmdocs.formats import GeneratedDocument, Section
from llmdocs.openapi import Operation, SpecBounds, analyse, parse_spec
from llmdocs.openapi import markdown as md
from llmdocs.openapi.reference import build_reference
from llmdocs.services.orchestrator import apidoc
from llmdocs.services.orchestrator.review import judgement, revise_draft

FALLBACK = "User Service (version 1.4.0) has 7 documented endpoints."


def test_a_judgement_in_the_expected_form_is_reported() -> None:
    answer = json.dumps({"score": 7, "approved": False, "gaps": ["no examples"]})
    assert judgement(answer) == {"status": "judged", "score": 0.7, "approved": False,
                                 "gaps": ["no examples"]}


@pytest.mark.parametrize("answer", [
    "", "The document looks fine. Score: 9", "[9]", "{}",
    '{"score": 9, "approved": true}',  # no gaps
    '{"score": "9", "approved": true, "gaps": []}',
    '{"score": 11, "approved": true, "gaps": []}',
    '{"score": 0.9, "approved": true, "gaps": []}',
    '{"score": 9, "approved": "yes", "gaps": []}',
])
def test_anything_else_is_no_judgement_never_a_score(answer: str) -> None:
    judged = judgement(answer)
    assert judged["status"] == "no judgement" and "score" not in judged
    assert judged["reason"].startswith("unparseable answer: ")


BOUNDS = SpecBounds()
SPEC = parse_spec(user_service_spec().encode(), BOUNDS)
REFERENCE = build_reference(SPEC, BOUNDS)


def _ops() -> list[Operation]:
    return analyse("docstore:x", SPEC, BOUNDS).operations


def block_of(op: Operation) -> str:
    """The reference's block of an operation, as the workflow renders it."""
    ref = next(o for o in REFERENCE.operations if (o.method, o.path) == (op.method, op.path))
    return md.operation_block(ref, REFERENCE)


def test_a_revision_keeps_every_section_and_says_what_it_changed() -> None:
    ops = _ops()
    lost, kept = ops[0], ops[1:]
    outline = [{"title": "Overview", "kind": "overview"},
               {"title": "Users", "kind": "group", "tag": "users"},
               {"title": "Endpoint summary", "kind": "summary_table"}]
    draft = GeneratedDocument(
        title="User Service API documentation",
        summary="The service manages accounts with GET /users and DELETE /admin/reset.",
        sections=[Section(title="Overview", body="Call DELETE /admin/reset first. It "
                          "manages user accounts."),
                  Section(title="Users",
                          body="\n\n".join(block_of(op) for op in kept
                                           if md.title_case(op.tag) == "Users")),
                  Section(title="Endpoint summary", body="| method | path |")])
    coverage = apidoc.check(draft.markdown(), ops)
    assert coverage.invented  # the draft names an endpoint the spec lacks
    review = {"invented": coverage.invented, "missing": coverage.missing,
              "missing_ops": coverage.missing_ops}

    revised, changes = revise_draft(draft, review, ops, outline, FALLBACK, block_of)

    assert revised.summary == FALLBACK  # it was one sentence naming /admin/reset
    overview = next(s for s in revised.sections if s.title == "Overview")
    assert overview.body == "It manages user accounts."
    assert "/admin" not in revised.markdown()
    assert f"`{lost.method.upper()} {lost.path}`" in revised.markdown()
    assert len(revised.sections) >= len(outline)
    by_section = {c["section"]: c for c in changes}
    assert "prose from the spec" in by_section["summary"]["what"]
    assert "/admin/reset" in by_section["summary"]["why"]
    assert "dropped the sentences" in by_section["Overview"]["what"]
    restored = [c for c in changes if f"{lost.method.upper()} {lost.path}" in c["what"]]
    assert restored and restored[0]["why"].startswith(f"{lost.method.upper()} {lost.path}:")
    assert all(set(c) == {"section", "what", "why"} and c["why"] for c in changes)


def test_a_clean_draft_is_left_as_it_is() -> None:
    ops = _ops()
    draft = GeneratedDocument(title="t", summary="It manages user accounts.", sections=[
        Section(title=md.title_case(op.tag), body=block_of(op)) for op in ops])
    review: dict[str, list[str]] = {"invented": [], "missing": [], "missing_ops": []}
    revised, changes = revise_draft(draft.model_copy(deep=True), review, ops, [], FALLBACK,
                                    block_of)
    assert changes == [] and revised == draft
