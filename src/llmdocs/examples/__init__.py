"""Example inputs shipped with llmdocs: the OpenAPI spec of the worked example."""

from __future__ import annotations

from importlib.resources import files


def user_service_spec() -> str:
    """A small, realistic "user service" OpenAPI spec (YAML)."""
    return files(__package__).joinpath("user-service.yaml").read_text(encoding="utf-8")
