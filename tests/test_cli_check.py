"""`llmdocs check` on plain files, as a CI job runs it: its exit code says whether the
document holds, and --json gives the check as the issue shapes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from llmdocs.cli import app
from llmdocs.examples import user_service_spec
from llmdocs.openapi import SpecBounds, parse_spec
from llmdocs.openapi.reference import build_reference
from openapi.test_real_specs import document

HANDWRITTEN = Path(__file__).parent / "claims" / "data" / "user-service-handwritten.md"


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "user-service.yaml"
    path.write_text(user_service_spec())
    return path


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, ["check", *map(str, args)])


def test_a_generated_document_passes(spec: Path, tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(document(build_reference(parse_spec(spec.read_bytes(), SpecBounds()),
                                            SpecBounds())))
    result = run(doc, "--spec", spec, "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["unsupported"] == [] and answer["missing"] == []
    assert answer["scores"] == {"completeness": 1.0, "truthfulness": 1.0}


def test_a_wrong_document_exits_1_and_says_why(spec: Path) -> None:
    result = run(HANDWRITTEN, "--spec", spec, "--json")
    assert result.exit_code == 1
    answer = json.loads(result.output)
    assert {(u["kind"], u["claim"]) for u in answer["unsupported"]} >= {
        ("operation", "GET /users/{user_id}/avatar"), ("parameter", "sort"),
        ("status", "201"), ("enum", "role: owner"),
        ("constraint", "password: maximum length 64")}
    assert answer["missing"] == ["POST /sessions", "DELETE /sessions/current"]
    table = run(HANDWRITTEN, "--spec", spec)
    assert table.exit_code == 1
    assert "│ avatar" in table.output  # its claim, folded in its cell
    assert "missing: DELETE /sessions/current: the endpoint is not documented" in \
        table.output
    assert "completeness 0.7143" in table.output


def test_what_cannot_be_read_exits_2_naming_it(spec: Path, tmp_path: Path) -> None:
    not_openapi = tmp_path / "not-openapi.yaml"
    not_openapi.write_text("title: a list\nitems: [1, 2]\n")
    refused = run(HANDWRITTEN, "--spec", not_openapi)
    assert refused.exit_code == 2 and "not an OpenAPI 3.0/3.1 document" in " ".join(
        refused.output.split())
    binary = tmp_path / "image.md"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    refused = run(binary, "--spec", spec)
    assert refused.exit_code == 2 and "is not UTF-8 text" in " ".join(refused.output.split())
    absent = run(tmp_path / "absent.md", "--spec", spec)
    assert absent.exit_code == 2 and "cannot read the document" in absent.output.replace(
        "\n", " ")
