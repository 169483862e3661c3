"""The event bus: one interface, two backends (a SQL table embedded, Redis Streams
distributed). Envelope: CloudEvents 1.0 attributes plus `correlationid` and
`traceparent`. Delivery is at least once; consumers are idempotent on `id`."""

from llmdocs.core.events.base import Delivery, EventBus, Handler, Subscription
from llmdocs.core.events.envelope import Event, make_event

__all__ = ["Delivery", "Event", "EventBus", "Handler", "Subscription", "make_event"]
