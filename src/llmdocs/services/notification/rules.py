"""Where alert rules plug in: each turns a bus event (or the passing of time) into zero
or more `Notification`s; the delivery engine matches those with the subscriptions. The
pass-through rule makes every event a notification of its own type, so any event type
of the bus can be subscribed to; alert rules add notifications of kind `alert.<name>`."""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Literal

from llmdocs.core.events import Event

Severity = Literal["info", "warning", "error", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error", "critical")


@dataclass(frozen=True)
class Notification:
    """What is worth telling someone, channel-neutral; `id` is stable (the same event
    gives the same id on a redelivery), so a delivery is made once per subscription."""

    id: str
    kind: str  # an event type (llmdocs.document.stored) or an alert (alert.run_failed)
    title: str
    text: str
    event: Event  # what it came from (a rule firing on time makes one of its own)
    severity: Severity = "info"
    link: str | None = None  # the document, run or service it is about
    # what filters match against
    service: str | None = None
    document: str | None = None
    tags: tuple[str, ...] = ()
    space: str | None = None
    # repeats of one alert share it (grouping folds them); None: never grouped
    group_key: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # kind-specific details

    def matches(self, patterns: Sequence[str], filters: dict[str, Any]) -> bool:
        """A subscription's events (kinds or fnmatch patterns) and filters; an absent
        filter matches everything, `severity` is a minimum."""
        if not any(fnmatchcase(self.kind, pattern) for pattern in patterns):
            return False
        for name in ("service", "document", "space"):
            wanted = filters.get(name)
            if wanted is not None and getattr(self, name) != wanted:
                return False
        tag = filters.get("tag")
        if tag is not None and tag not in self.tags:
            return False
        minimum = filters.get("severity")
        return minimum is None or SEVERITIES.index(self.severity) >= SEVERITIES.index(minimum)


def derived_id(event: Event, rule: str) -> str:
    """A rule's notification id: stable per event and rule, within the column's 100."""
    return f"{rule[:40]}:{hashlib.sha256(f'{rule}|{event.id}'.encode()).hexdigest()[:40]}"


class Rule(abc.ABC):
    """An alert rule. `types` are the event types it wants (None: all); `evaluate` runs
    for each (at least once: it must be idempotent, e.g. by `derived_id`); `tick` runs
    every `LLMDOCS_NOTIFICATION_TICK_SECONDS` for conditions that are about time
    ("unhealthy for more than N seconds"). Both may run on every replica."""

    name: str
    types: frozenset[str] | None = None

    @abc.abstractmethod
    async def evaluate(self, event: Event) -> Sequence[Notification]: ...

    async def tick(self, now: datetime) -> Sequence[Notification]:
        return ()


class PassThrough(Rule):
    """Every event as a notification of its own type."""

    name = "event"

    async def evaluate(self, event: Event) -> Sequence[Notification]:
        return [from_event(event)]


def from_event(event: Event, **overrides: Any) -> Notification:
    """An event as a notification, its filter fields read from the usual data keys."""
    data = event.data
    service = data.get("service") or event.source.removeprefix("llmdocs/")
    document = data.get("document_id") or (event.subject if ".document." in event.type
                                          else None)
    tags = data.get("tags")
    tags = tags if isinstance(tags, list) else []
    fields: dict[str, Any] = {
        "id": event.id, "kind": event.type, "title": event.type,
        "text": f"{event.type} from {event.source}"
                + (f" about {event.subject}" if event.subject else ""),
        "event": event, "service": str(service) if service else None,
        "document": str(document) if document else None,
        "tags": tuple(str(t) for t in tags), "space": data.get("space"),
        "data": data,
    }
    fields.update(overrides)
    return Notification(**fields)


def build_rules(rules: Sequence[Rule] = ()) -> list[Rule]:
    """The rules the engine runs: the pass-through, then the alert rules (notify2's
    `alerts.py` passes its configured ones here from the lifespan)."""
    return [PassThrough(), *rules]
