"""The discovery-agent's refusals, as domain errors; `api.py` maps each to its status."""

from __future__ import annotations

from llmdocs.core.errors import DomainError


class ReservedName(DomainError):
    """An llmdocs service's name asked for at another address than that service's."""
