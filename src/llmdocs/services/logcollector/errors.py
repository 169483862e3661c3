"""The log-collector's refusals, as domain errors; `api.py` maps each to its status."""

from __future__ import annotations

from llmdocs.core.errors import DomainError


class BadCursor(DomainError):
    """A cursor this collector did not give."""


class NothingRecorded(DomainError):
    """No log record or event carries the correlation id."""
