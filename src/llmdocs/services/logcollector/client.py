"""Typed client of the log-collector: what other services and the CLI use to reach it."""

from __future__ import annotations

from llmdocs.core.client import ServiceClient


class LogCollectorClient(ServiceClient):
    service = "logcollector"
