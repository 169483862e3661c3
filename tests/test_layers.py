"""The kernel knows no service: nothing in `llmdocs.core` imports the layers above it,
which plug in through `core.service.Hooks` instead; the libraries (`llmdocs.openapi`,
`llmdocs.claims`) build on the kernel and each other alone, never on a service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import llmdocs.claims
import llmdocs.core
import llmdocs.openapi

CORE = Path(llmdocs.core.__file__).parent
OPENAPI = Path(llmdocs.openapi.__file__).parent
CLAIMS = Path(llmdocs.claims.__file__).parent
ABOVE = ("llmdocs.services", "llmdocs.migrations", "llmdocs.runtime", "llmdocs.cli")


def imported(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_core_imports_nothing_above_it() -> None:
    found = {
        f"{path.relative_to(CORE)}: {name}"
        for path in CORE.rglob("*.py")
        for name in imported(path)
        if name.startswith(ABOVE) or (name.startswith("llmdocs.") and not (
            name.startswith("llmdocs.core.") or name == "llmdocs.__version__"))
    }
    assert not found


def test_no_relative_imports_hide_from_the_check() -> None:
    relative = [path.name for path in CORE.rglob("*.py")
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.ImportFrom) and node.level]
    assert not relative


@pytest.mark.parametrize(("library", "allowed"), [
    (OPENAPI, ("llmdocs.core.", "llmdocs.openapi.")),
    (CLAIMS, ("llmdocs.core.", "llmdocs.openapi.", "llmdocs.claims."))],
    ids=["openapi", "claims"])
def test_a_library_imports_no_service(library: Path, allowed: tuple[str, ...]) -> None:
    found = {
        f"{path.relative_to(library)}: {name}"
        for path in library.rglob("*.py")
        for name in imported(path)
        if name.startswith("llmdocs.") and not name.startswith(allowed)
    }
    assert not found
