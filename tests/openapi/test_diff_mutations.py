"""Every rule of the API diff on real specs: each mutation alone is found as its one kind
with its breakingness, several together are each found, and nothing else is reported."""

from __future__ import annotations

import copy

import pytest

from llmdocs.openapi.diff import RULES, diff
from openapi.diffcorpus import MUTATIONS, Mutation, Spec, parsed, prepare, sources

SPECS = {name: parsed(raw) for name, raw in sources().items()}


def versions(name: str, mutations: list[Mutation]) -> tuple[Spec, Spec]:
    base = copy.deepcopy(SPECS[name])
    prepare(base)
    for mutation in mutations:
        mutation.setup(base)
    head = copy.deepcopy(base)
    for mutation in mutations:
        mutation.mutate(head)
    return base, head


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_each_rule_alone_is_found_with_its_breakingness(name: str, mutation: Mutation) -> None:
    base, head = versions(name, [mutation])
    found = diff(base, head)
    assert {(c.kind, c.breaking) for c in found.changes} == {
        (mutation.kind, mutation.breaking)}, [c.message for c in found.changes]
    assert found.summary.breaking == sum(c.breaking for c in found.changes)
    assert all(c.message and c.location.startswith("/") for c in found.changes)


def test_the_corpus_applies_every_rule() -> None:
    assert {m.kind for m in MUTATIONS} == set(RULES)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_mutations_together_are_each_found(name: str) -> None:
    together = [m for m in MUTATIONS if m.name in {
        "required parameter added", "request field removed", "response enum value added",
        "summary changed", "status added", "response maxLength lowered", "server added"}]
    base, head = versions(name, together)
    found = diff(base, head)
    assert {(c.kind, c.breaking) for c in found.changes} == {
        (m.kind, m.breaking) for m in together}
    assert found.summary.breaking == 3 and found.summary.non_breaking == 4
