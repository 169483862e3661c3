"""Typed client of the llm-gateway: what other services and the CLI use to reach it."""

from __future__ import annotations

from llmdocs.core.client import ServiceClient


class GatewayClient(ServiceClient):
    service = "gateway"
