"""Typed client of the prompt-store: what other services and the CLI use to reach it."""

from __future__ import annotations

from llmdocs.core.client import ServiceClient


class PromptStoreClient(ServiceClient):
    service = "promptstore"
