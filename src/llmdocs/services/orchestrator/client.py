"""Typed client of the orchestrator: what other services and the CLI use to reach it."""

from __future__ import annotations

from llmdocs.core.client import ServiceClient


class OrchestratorClient(ServiceClient):
    service = "orchestrator"
