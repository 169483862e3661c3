"""The built-in alert rules. Each fires once per condition, not once per event: an
alert's id is made from the condition (the run, the finding, the budget's window and
mark, the unhealthy spell), and the engine writes one delivery per id and subscription,
so a repeated or redelivered event adds nothing. Links point at the web portal's pages
(`LLMDOCS_NOTIFICATION_PORTAL_URL`): /documents/{id}, /runs/{id}, /services/{name},
/usage."""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base, Database, as_utc
from llmdocs.core.events import Event
from llmdocs.services.notification.alertsettings import AlertSettings
from llmdocs.services.notification.rules import Notification, Rule, Severity, from_event

HEALTH_CHANGED = "llmdocs.service.health_changed"
RUN_FAILED = "llmdocs.workflow.failed"
DOCUMENT_STALE = "llmdocs.document.stale"
SPEC_CHANGED = "llmdocs.spec.changed"
BUDGET_THRESHOLD = "llmdocs.budget.threshold"
DEAD_LETTERED = "llmdocs.event.dead_lettered"
TEXT_CHARS = 1000  # of an error or reason quoted in an alert


class Condition(Base):
    """A condition that lasts (a service unhealthy): when it began, whether its alert
    went out, and the latest event applied, so an older one redelivered late is ignored."""

    __tablename__ = "notification_conditions"

    rule: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(10))  # pending | firing | resolved
    since: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    changed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    event: Mapped[dict[str, Any]] = mapped_column(sa.JSON())  # the one that began it


def alert_id(kind: str, *condition: object) -> str:
    """One id per condition, within the deliveries' 100 characters."""
    digest = hashlib.sha256("|".join(map(str, (kind, *condition))).encode()).hexdigest()
    return f"{kind[:50]}:{digest[:40]}"


class Links:
    def __init__(self, portal_url: str) -> None:
        self.base = portal_url.rstrip("/")

    def __call__(self, page: str, name: str | None = None) -> str | None:
        if not self.base:
            return None
        return f"{self.base}/{page}" + (f"/{quote(name, safe='')}" if name else "")


def _alert(event: Event, kind: str, condition: Sequence[object], severity: Severity,
           title: str, text: str, group: str, **fields: Any) -> Notification:
    return from_event(event, id=alert_id(kind, *condition), kind=kind, severity=severity,
                      title=title, text=text[:TEXT_CHARS], group_key=f"{kind}:{group}",
                      **fields)


class Linked(Rule, abc.ABC):
    """A rule whose alerts link to a page of the web portal."""

    def __init__(self, links: Links) -> None:
        self.links = links


class RunFailed(Linked):
    name = "run_failed"
    types = frozenset({RUN_FAILED})

    async def evaluate(self, event: Event) -> Sequence[Notification]:
        run, workflow = event.data.get("run_id") or event.subject, event.data.get("workflow")
        return [_alert(event, "alert.run_failed", [run], "error",
                       f"A run of {workflow} failed",
                       f"Run {run}: {event.data.get('error') or 'no reason given'}",
                       str(workflow),
                       link=self.links("runs", str(run)))]


class DocumentStale(Linked):
    name = "document_stale"
    types = frozenset({DOCUMENT_STALE})

    async def evaluate(self, event: Event) -> Sequence[Notification]:
        document = str(event.data.get("document_id") or event.subject)
        changes = event.data.get("changes") or []
        return [_alert(event, "alert.document_stale",
                       [document, event.data.get("finding_id")], "warning",
                       f"Document {document} is stale",
                       f"{event.data.get('source')} changed: {len(changes)} change(s) touch "
                       f"version {event.data.get('version')}", document,
                       link=self.links("documents", document), document=document)]


class BreakingChange(Linked):
    name = "breaking_change"
    types = frozenset({SPEC_CHANGED})

    async def evaluate(self, event: Event) -> Sequence[Notification]:
        summary = event.data.get("summary") or {}
        breaking = int(summary.get("breaking") or 0)
        if not breaking:
            return []
        source = str(event.data.get("source") or event.subject)
        kind, _, name = source.partition(":")
        documents = [str(d) for d in event.data.get("documents") or []]
        link = (self.links("services", name) if kind == "service" else
                self.links("documents", name) if kind == "docstore" else
                self.links("documents", documents[0]) if documents else None)
        return [_alert(event, "alert.breaking_change", [event.data.get("finding_id")],
                       "error", f"Breaking API change in {source}",
                       f"{breaking} breaking and {summary.get('non_breaking', 0)} other "
                       f"change(s); {len(documents)} document(s) affected", source,
                       link=link, service=name if kind == "service" else None)]


class BudgetPassed(Linked):
    name = "budget"
    types = frozenset({BUDGET_THRESHOLD})

    def __init__(self, links: Links, percents: Sequence[int]) -> None:
        super().__init__(links)
        self.percents = frozenset(percents)

    async def evaluate(self, event: Event) -> Sequence[Notification]:
        data = event.data
        percent = int(data.get("percent") or 0)
        if percent not in self.percents:
            return []
        who = f"{data.get('scope')}:{data.get('subject')}"
        full = percent >= 100
        spent = data.get("spent_usd")
        text = (f"${spent:.4f} of ${data.get('limit_usd'):.4f} spent"
                if isinstance(spent, int | float) else
                f"a call was refused: the ${data.get('limit_usd'):.4f} budget cannot cover it")
        return [_alert(event, "alert.budget", [who, data.get("window"), percent],
                       "critical" if full else "warning",
                       f"LLM budget of {data.get('subject')} "
                       + ("exhausted" if full else f"past {percent}%"),
                       f"{text} (window {data.get('window')})", who,
                       link=self.links("usage"), service="gateway")]


class DeadLettered(Rule):
    name = "dead_letter"
    types = frozenset({DEAD_LETTERED})

    async def evaluate(self, event: Event) -> Sequence[Notification]:
        data = event.data
        group = str(data.get("group"))
        return [_alert(event, "alert.dead_letter", [group, data.get("event_id")], "error",
                       f"Event {data.get('event_type')} dead-lettered by {group}",
                       f"{group} gave up on event {data.get('event_id')} after "
                       f"{data.get('attempts')} deliveries", group, service=None)]


class ServiceUnhealthy(Linked):
    """A service unhealthy for more than `after` seconds, found by `tick`, and its
    recovery, once alerted. A spell shorter than `after` says nothing."""

    name = "service_unhealthy"
    types = frozenset({HEALTH_CHANGED})

    def __init__(self, links: Links, database: Database, after: float,
                 recovered: bool) -> None:
        super().__init__(links)
        self.database = database
        self.after, self.recovered = timedelta(seconds=after), recovered

    async def evaluate(self, event: Event) -> Sequence[Notification]:
        try:
            return await self._apply(event)
        except IntegrityError:  # another replica made the service's first row just now
            return await self._apply(event)

    async def _apply(self, event: Event) -> Sequence[Notification]:
        service = str(event.data.get("service") or event.subject)
        at = as_utc(event.time)
        unhealthy = event.data.get("to") == "unhealthy"
        began: tuple[dict[str, Any], datetime] | None = None  # an alerted spell's start
        async with self.database.transaction() as session:
            row = await session.get(Condition, (self.name, service), with_for_update=True)
            if row is None:
                if not unhealthy:
                    return []
                session.add(Condition(rule=self.name, key=service, status="pending",
                                      since=at, changed_at=at,
                                      event=event.model_dump(mode="json")))
            elif as_utc(row.changed_at) >= at:
                return []  # an older change, redelivered after a newer one
            elif unhealthy:
                row.changed_at = at
                if row.status == "resolved":  # a new spell
                    row.status, row.since = "pending", at
                    row.event = event.model_dump(mode="json")
            else:
                if row.status == "firing":
                    began = row.event, as_utc(row.since)
                row.status, row.changed_at = "resolved", at
        if began is not None and self.recovered:
            return [self._recovered(Event.model_validate(began[0]), event, service,
                                    began[1], at)]
        return await self.tick(at) if unhealthy and not self.after else []

    async def tick(self, now: datetime) -> Sequence[Notification]:
        """The alerts of spells that have lasted `after`; the conditional update lets
        one replica mark each firing (and the alert's id makes one delivery anyway)."""
        async with self.database.transaction() as session:
            due = (await session.scalars(sa.select(Condition).where(
                Condition.rule == self.name, Condition.status == "pending",
                Condition.since <= now - self.after))).all()
            fired = []
            for row in due:
                done = await session.execute(
                    sa.update(Condition).where(Condition.rule == row.rule,
                                               Condition.key == row.key,
                                               Condition.status == "pending",
                                               Condition.since == row.since)
                    .values(status="firing"))
                if done.rowcount:  # type: ignore[attr-defined]
                    fired.append((row.key, as_utc(row.since), row.event))
        return [self._unhealthy(Event.model_validate(event), key, since, now)
                for key, since, event in fired]

    def _unhealthy(self, event: Event, service: str, since: datetime,
                   now: datetime) -> Notification:
        lasted = int((now - since).total_seconds())
        reason = event.data.get("reason")
        return _alert(event, "alert.service_unhealthy", [service, since.isoformat()],
                      "error", f"{service} unhealthy",
                      f"{service} has been unhealthy for {lasted} s"
                      + (f": {reason}" if reason else ""), service,
                      link=self.links("services", service), service=service)

    def _recovered(self, began: Event, event: Event, service: str, since: datetime,
                   at: datetime) -> Notification:
        lasted = int((at - since).total_seconds())
        return _alert(event, "alert.service_recovered", [service, since.isoformat()], "info",
                      f"{service} recovered",
                      f"{service} is {event.data.get('to')} again after {lasted} s "
                      f"unhealthy (since {began.time.isoformat()})", service,
                      link=self.links("services", service), service=service)


def alert_rules(config: AlertSettings, database: Database) -> list[Rule]:
    """The rules the settings turn on."""
    links = Links(config.portal_url)
    rules: list[Rule] = []
    if config.unhealthy_seconds >= 0:
        rules.append(ServiceUnhealthy(links, database, config.unhealthy_seconds,
                                      config.recovered))
    if config.run_failed:
        rules.append(RunFailed(links))
    if config.document_stale:
        rules.append(DocumentStale(links))
    if config.breaking_change:
        rules.append(BreakingChange(links))
    if config.budget_percents:
        rules.append(BudgetPassed(links, config.budget_percents))
    if config.dead_letters:
        rules.append(DeadLettered())
    return rules
