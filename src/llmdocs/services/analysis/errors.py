"""The analysis service's refusals, as domain errors; `api.py` maps each to its status."""

from __future__ import annotations

from llmdocs.core.errors import DomainError


class BadSpec(DomainError):
    """A spec that cannot be read: not OpenAPI, unparseable, beyond the bounds, a bad
    `$ref`, a URL that serves none, a stored document that is not one."""


class NotMarkdown(DomainError):
    """A document to check that is not Markdown text."""


class UnknownDocument(DomainError):
    """A stored document named by a request that the doc-store does not have."""


class Refused(DomainError):
    """The caller may not read what the request names."""


class RefreshFailed(DomainError):
    """The interpreter's refresh ended without a new version."""
