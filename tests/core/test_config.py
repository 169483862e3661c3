"""Settings read from the environment say which variable is wrong, and why."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from llmdocs.core.config import Settings


def test_a_port_variable_holding_a_service_link_is_refused_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMDOCS_INTERPRETER_PORT", "tcp://10.96.4.2:5120")
    with pytest.raises(ValidationError) as refused:
        Settings()
    (error,) = refused.value.errors()
    assert error["loc"] == ("interpreter_port",)
    assert "LLMDOCS_INTERPRETER_PORT='tcp://10.96.4.2:5120'" in error["msg"]
    assert "Service named llmdocs-interpreter" in error["msg"]


def test_a_port_variable_holding_a_port_is_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMDOCS_INTERPRETER_PORT", "6120")
    assert Settings().port_for("interpreter") == 6120
