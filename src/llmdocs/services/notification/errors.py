"""The notification service's refusals, as domain errors; `api.py` maps each to its status."""

from __future__ import annotations

from llmdocs.core.errors import DomainError


class BadSubscription(DomainError):
    """A channel that can never be delivered to (a URL into a blocked network)."""


class UnknownSubscription(DomainError):
    """No such subscription, or not the caller's."""


class UnknownDelivery(DomainError):
    """No such delivery, or not of the caller's subscriptions."""


class NotReplayable(DomainError):
    """A delivery that is still pending: it is being retried already."""
