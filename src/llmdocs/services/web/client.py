"""The client of the web portal: its kernel routes (health, info) for the CLI."""

from __future__ import annotations

from llmdocs.core.client import ServiceClient


class WebClient(ServiceClient):
    service = "web"
