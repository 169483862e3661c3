"""`llmdocs diff` on files and a URL, with no service running: the table, the JSON and
the exit codes CI relies on."""

from __future__ import annotations

import copy
import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from typer.testing import CliRunner

from llmdocs.cli import app
from llmdocs.examples import user_service_spec
from openapi.diffcorpus import parsed


@pytest.fixture
def specs(tmp_path: Path) -> dict[str, Path]:
    """The example as YAML, the same as JSON, and versions with one change of each sort."""
    base = parsed(user_service_spec().encode())
    breaking, cosmetic = copy.deepcopy(base), copy.deepcopy(base)
    del breaking["paths"]["/sessions/current"]["delete"]
    cosmetic["paths"]["/users"]["get"]["summary"] = "List every user"
    out = {"old": tmp_path / "old.yaml", "json": tmp_path / "same.json",
           "breaking": tmp_path / "breaking.yaml", "cosmetic": tmp_path / "cosmetic.yaml",
           "bad": tmp_path / "bad.yaml"}
    out["old"].write_text(user_service_spec())
    out["json"].write_text(json.dumps(base))
    out["breaking"].write_text(yaml.safe_dump(breaking))
    out["cosmetic"].write_text(yaml.safe_dump(cosmetic))
    out["bad"].write_text("title: no api here\n")
    return out


def run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["diff", *map(str, args)])
    return result.exit_code, result.output


def test_a_breaking_change_fails_by_default_and_is_shown(specs: dict[str, Path]) -> None:
    code, output = run(specs["old"], specs["breaking"])
    assert code == 1
    assert "1 breaking, 0 non-breaking" in output  # the table may wrap what follows
    assert all(word in output for word in ("DELETE", "/sessions/current", "removed"))
    assert run(specs["old"], specs["breaking"], "--fail-on", "none")[0] == 0


def test_fail_on_any_counts_a_non_breaking_change(specs: dict[str, Path]) -> None:
    assert run(specs["old"], specs["cosmetic"])[0] == 0
    code, output = run(specs["old"], specs["cosmetic"], "--fail-on", "any")
    assert code == 1 and "summary.changed" in output


def test_the_same_spec_as_json_has_no_changes(specs: dict[str, Path]) -> None:
    assert run(specs["old"], specs["json"], "--fail-on", "any") == (0, "No changes.\n")


def test_json_output_is_the_diff(specs: dict[str, Path]) -> None:
    code, output = run(specs["old"], specs["breaking"], "--json")
    answer = json.loads(output)
    assert code == 1 and answer["summary"] == {"breaking": 1, "non_breaking": 0}
    assert answer["changes"][0]["location"] == "/paths/~1sessions~1current/delete"


@pytest.mark.parametrize("which", ["bad", "missing"])
def test_a_spec_that_cannot_be_read_exits_2_saying_why(specs: dict[str, Path],
                                                        which: str) -> None:
    code, output = run(specs["old"], specs.get(which, specs["old"].parent / "missing.yaml"))
    assert code == 2
    assert ("not an OpenAPI" if which == "bad" else "cannot read") in output


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Not on stderr, where the command's output is read."""


@pytest.fixture
def served(specs: dict[str, Path]) -> Iterator[str]:
    handler = functools.partial(Quiet, directory=str(specs["old"].parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_spec_may_come_from_a_url(specs: dict[str, Path], served: str) -> None:
    code, output = run(specs["old"], f"{served}/breaking.yaml", "--json")
    assert code == 1 and json.loads(output)["summary"]["breaking"] == 1
