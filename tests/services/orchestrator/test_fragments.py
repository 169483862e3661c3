"""What each section of an API document was written from: a change to one operation
changes the hashes of that operation and of the sections that show it, and no other."""

from __future__ import annotations

from typing import Any

from llmdocs.examples import user_service_spec
from llmdocs.openapi import SpecBounds, parse_spec
from llmdocs.openapi.reference import build_reference
from llmdocs.services.orchestrator.apisections import fragments, outline


def sections_of(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    reference = build_reference(spec, SpecBounds())
    return {s["title"]: s for s in fragments(reference, outline(reference, errors=False))}


def test_a_changed_operation_changes_only_what_shows_it() -> None:
    spec = parse_spec(user_service_spec().encode(), SpecBounds())
    before = sections_of(spec)
    spec["paths"]["/sessions"]["post"]["summary"] = "Log in with a password"
    after = sections_of(spec)

    assert set(before) == set(after) >= {"Overview", "Users", "Sessions", "Endpoint summary"}
    changed = {title for title in before if before[title]["sha256"] != after[title]["sha256"]}
    assert changed == {"Sessions", "Endpoint summary"}  # the table lists each summary
    ops = {o["operation"]: o["sha256"] for o in before["Sessions"]["operations"]}
    ops_after = {o["operation"]: o["sha256"] for o in after["Sessions"]["operations"]}
    assert set(ops) == {"POST /sessions", "DELETE /sessions/current"} == set(ops_after)
    assert ops["POST /sessions"] != ops_after["POST /sessions"]
    assert ops["DELETE /sessions/current"] == ops_after["DELETE /sessions/current"]
    assert before["Users"] == after["Users"]
    assert before["Overview"]["operations"] == []


def test_every_operation_is_in_a_group_section() -> None:
    spec = parse_spec(user_service_spec().encode(), SpecBounds())
    found = sections_of(spec)
    grouped = [o["operation"] for s in found.values() if s["kind"] == "group"
               for o in s["operations"]]
    listed = [o["operation"] for o in found["Endpoint summary"]["operations"]]
    assert sorted(grouped) == sorted(listed) and len(listed) == len(set(listed)) == 7
