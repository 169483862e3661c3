"""`llmdocs llm ...`: the llm-gateway from the terminal."""

from __future__ import annotations

from llmdocs.cli_support import service_cli
from llmdocs.services.gateway import spec
from llmdocs.services.gateway.client import GatewayClient

cli = service_cli(spec, GatewayClient, name="llm")
