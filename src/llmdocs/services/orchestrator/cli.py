"""`llmdocs runs ...`: the orchestrator from the terminal."""

from __future__ import annotations

from llmdocs.cli_support import service_cli
from llmdocs.services.orchestrator import spec
from llmdocs.services.orchestrator.client import OrchestratorClient

cli = service_cli(spec, OrchestratorClient, name="runs")
