"""The prompt-store's refusals, as domain errors; `api.py` maps each to its status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class PromptStoreError(Exception):
    """A request the store refuses; `errors` name the fields at fault."""

    def __init__(self, detail: str, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)


class NotFound(PromptStoreError): ...


class Conflict(PromptStoreError): ...


class Invalid(PromptStoreError): ...


class GatewayUnavailable(PromptStoreError): ...


class GatewayRefused(PromptStoreError): ...
