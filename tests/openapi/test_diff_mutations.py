"""Every rule of the API diff on real specs: each mutation alone is found as its one kind
with its breakingness, several together are each found, and nothing else is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmdocs.openapi.diff import RULES, diff
from openapi.diffcorpus import MUTATIONS, Mutation, parsed, sources, versions

SPECS = {name: parsed(raw) for name, raw in sources().items()}


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_each_rule_alone_is_found_with_its_breakingness(name: str, mutation: Mutation) -> None:
    base, head = versions(SPECS[name], [mutation])
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
    base, head = versions(SPECS[name], together)
    found = diff(base, head)
    assert {(c.kind, c.breaking) for c in found.changes} == {
        (m.kind, m.breaking) for m in together}
    assert found.summary.breaking == 3 and found.summary.non_breaking == 4


def test_every_rule_is_in_the_documented_table() -> None:
    table = (Path(__file__).parents[2] / "docs" / "apidiff.md").read_text()
    assert [kind for kind in RULES if f"| `{kind}` | {RULES[kind]} |" not in table] == []
