"""The CLI finds the running `llmdocs up` wherever it is run, or says why it cannot, and
never makes a signing key of its own (every call would be refused)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from llmdocs import instance
from llmdocs.cli import app
from llmdocs.cli_support import cli_settings
from llmdocs.core.auth import verify_token
from llmdocs.core.config import Settings


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with no instance of its own, and no instance named by the environment."""
    for name in ("LLMDOCS_DATA_DIR", "LLMDOCS_JWT_SECRET", "LLMDOCS_TOKEN",
                 "LLMDOCS_DOCSTORE_URL"):
        monkeypatch.delenv(name, raising=False)
    place = tmp_path / "elsewhere"
    place.mkdir()
    monkeypatch.chdir(place)
    return place


@pytest.fixture
def served(tmp_path: Path) -> Settings:
    """An instance's settings, its key made in its data dir as `up` makes it."""
    settings = Settings(data_dir=tmp_path / "instance" / ".llmdocs", docstore_port=6001)
    assert settings.signing_key
    return settings


def test_the_cli_anywhere_calls_the_recorded_instance_with_its_key(
    served: Settings, elsewhere: Path
) -> None:
    instance.record(served, ["docstore", "gateway"])
    assert stat.S_IMODE(instance.state_path().stat().st_mode) == 0o600
    settings = cli_settings()
    assert settings.data_dir == served.data_dir.resolve()
    assert settings.url_for("docstore") == "http://127.0.0.1:6001"

    issued = CliRunner().invoke(app, ["token", "--scopes", "docs:read"])
    assert issued.exit_code == 0, issued.output
    assert verify_token(served, issued.output.strip()).allows("docs:read")
    assert not (elsewhere / ".llmdocs").exists()


def test_the_cli_uses_the_certificates_of_an_instance_serving_mutual_tls(
    served: Settings, elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMDOCS_TLS_DIR", raising=False)
    certs = elsewhere / "certs"
    instance.record(served.model_copy(update={"tls_dir": certs}), ["docstore"])
    settings = cli_settings()
    assert settings.tls_dir == certs.resolve()
    assert settings.url_for("docstore") == "https://127.0.0.1:6001"


def test_an_explicit_url_wins_over_the_recorded_one(
    served: Settings, elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance.record(served, ["docstore"])
    monkeypatch.setenv("LLMDOCS_DOCSTORE_URL", "http://10.0.0.5:80")
    assert cli_settings().url_for("docstore") == "http://10.0.0.5:80"


def test_without_an_instance_the_cli_says_why_and_makes_no_key(elsewhere: Path) -> None:
    for command in (["token"], ["docs", "list"]):
        refused = CliRunner().invoke(app, command)
        assert refused.exit_code == 2, refused.output
        said = " ".join(refused.output.split())
        assert f"No running llmdocs found in {instance.state_path()}" in said
        assert "set LLMDOCS_DATA_DIR" in said and "LLMDOCS_TOKEN" in said
    assert not (elsewhere / ".llmdocs").exists()


def test_an_instance_whose_process_is_gone_is_not_used(
    served: Settings, elsewhere: Path
) -> None:
    instance.record(served, ["docstore"])
    assert instance.running() is not None
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = instance.state_path()
    path.write_text(path.read_text().replace(f'"pid": {os.getpid()}', f'"pid": {gone.pid}'))
    assert instance.running() is None
    assert CliRunner().invoke(app, ["token"]).exit_code == 2


def test_forget_leaves_another_process_entry(served: Settings, elsewhere: Path) -> None:
    instance.record(served, ["docstore"])
    path = instance.state_path()
    path.write_text(path.read_text().replace(f'"pid": {os.getpid()}', '"pid": 1'))
    instance.forget()
    assert path.exists()
    path.write_text(path.read_text().replace('"pid": 1', f'"pid": {os.getpid()}'))
    instance.forget()
    assert not path.exists()


def test_an_instance_signing_with_a_given_secret_asks_for_it(
    tmp_path: Path, elsewhere: Path
) -> None:
    instance.record(Settings(data_dir=tmp_path / "d", jwt_secret=SecretStr("s" * 48)),
                    ["docstore"])
    refused = CliRunner().invoke(app, ["token"])
    assert refused.exit_code == 2
    assert "signs with LLMDOCS_JWT_SECRET: set it here too" in " ".join(refused.output.split())


def test_a_state_dir_that_cannot_be_written_does_not_stop_up(
    served: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_dir = tmp_path / "state-file"
    not_a_dir.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(not_a_dir))
    instance.record(served, ["docstore"])
    assert instance.running() is None
