"""The doc-store's refusals, as domain errors; `api.py` maps each to its status."""

from __future__ import annotations

from llmdocs.core.errors import DomainError


class DocStoreError(DomainError):
    """A request the store refuses; `field` names the part of it at fault, `message`
    says what is wrong with that part when the detail says more."""

    def __init__(self, detail: str, field: str | None = None,
                 message: str | None = None) -> None:
        super().__init__(detail, [{"field": field, "message": message or detail}]
                         if field else None)


class NotFoundError(DocStoreError): ...


class BadInput(DocStoreError): ...


class StaleVersion(DocStoreError): ...


class Rejected(DocStoreError):
    """Well-formed, but not something the store can take (bad content, a cursor it
    did not give, an Idempotency-Key reused for another request)."""


class WrongState(DocStoreError):
    """The document is not in the state the request needs (already deleted)."""


class BlobsUnavailable(DocStoreError): ...


class Forbidden(DocStoreError):
    """The caller's role in the document's space does not allow this (a viewer writing)."""


class Exists(DocStoreError): ...
