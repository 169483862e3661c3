"""`llmdocs services ...`: the discovery-agent from the terminal."""

from __future__ import annotations

from llmdocs.cli_support import service_cli
from llmdocs.services.discovery import spec
from llmdocs.services.discovery.client import DiscoveryClient

cli = service_cli(spec, DiscoveryClient, name="services")
