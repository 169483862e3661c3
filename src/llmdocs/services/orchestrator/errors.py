"""The orchestrator's domain errors; `api.py` maps each to its status."""

from __future__ import annotations

from llmdocs.core.errors import DomainError


class OrchestratorError(DomainError):
    """A request the registry or the runner refuses; `detail` says why to a person."""


class Unknown(OrchestratorError):
    """No such service, run or workflow (or none the caller may see)."""


class Refused(OrchestratorError):
    """The caller may not do this."""


class Invalid(OrchestratorError):
    """The request is well formed but its content cannot be used."""


class WrongState(OrchestratorError):
    """The run is not in a state that allows this."""


class GatewayFailed(OrchestratorError):
    """The llm-gateway, which the agent needs, failed or could not be reached."""


class HolderFailed(OrchestratorError):
    """A service refused its part of a privacy request (not an outage: a retry will not
    help until someone looks)."""
