"""Specs the reference tests read: the project's example, a real 3.0 spec and a real 2.0 one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmdocs.examples import user_service_spec
from llmdocs.openapi import SpecBounds, parse_spec

HERE = Path(__file__).parent
USPTO = Path("/work/shared/corpus/openapi/uspto.yaml")


def spec(raw: bytes) -> dict[str, Any]:
    return parse_spec(raw, SpecBounds())


@pytest.fixture(scope="session")
def user_service() -> dict[str, Any]:
    return spec(user_service_spec().encode())


@pytest.fixture(scope="session")
def uspto() -> dict[str, Any]:
    return spec(USPTO.read_bytes())


@pytest.fixture(scope="session")
def petstore() -> dict[str, Any]:
    """The classic Swagger Petstore (2.0), abridged by hand to eight operations."""
    return spec((HERE / "petstore-v2.json").read_bytes())
