"""Typed client of the discovery-agent: what other services and the CLI use to reach it."""

from __future__ import annotations

from llmdocs.core.client import ServiceClient


class DiscoveryClient(ServiceClient):
    service = "discovery"
