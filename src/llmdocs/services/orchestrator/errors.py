"""The orchestrator's domain errors; `api.py` answers each with its problem+json status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class OrchestratorError(Exception):
    """A request the registry or the runner refuses; `detail` says why to a person."""

    status: ClassVar[int] = 400

    def __init__(self, detail: str, errors: Sequence[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None


class Unknown(OrchestratorError):
    """No such service, run or workflow (or none the caller may see)."""

    status = 404


class Refused(OrchestratorError):
    """The caller may not do this."""

    status = 403


class Invalid(OrchestratorError):
    """The request is well formed but its content cannot be used."""

    status = 422


class WrongState(OrchestratorError):
    """The run is not in a state that allows this."""

    status = 409
