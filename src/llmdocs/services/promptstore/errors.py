"""The prompt-store's refusals, as domain errors; `api.py` maps each to its status."""

from __future__ import annotations

from llmdocs.core.errors import DomainError


class PromptStoreError(DomainError):
    """A request the store refuses; `errors` name the fields at fault."""


class NotFound(PromptStoreError): ...


class Conflict(PromptStoreError): ...


class Invalid(PromptStoreError): ...


class GatewayUnavailable(PromptStoreError): ...


class GatewayRefused(PromptStoreError): ...


class Forbidden(PromptStoreError):
    """The caller's role in the prompt's space does not allow this (a viewer writing)."""
