"""The interpreter's refusals, raised by the domain code; `api.py` says them as problems."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Refused(Exception):
    """A request the interpreter will not carry out; `errors` name the fields at fault."""

    def __init__(self, detail: str, errors: Sequence[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None


class CannotRun(Refused):
    """What the request asks for cannot be mapped to an action or run."""


class NotAllowed(Refused):
    """The caller may not touch it: another user's, or a scope the token lacks."""


class NoSuch(Refused):
    """No such execution, or nothing of the kind recorded for it."""


class NothingToCancel(Refused):
    """The execution has no run to stop."""
