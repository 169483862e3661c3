"""The prompt-store's domain logic: prompts, versions, labels, lifecycle, rendering,
search, A/B tests, analytics and the quality tools. It knows nothing of HTTP; its
refusals are the domain errors of `errors.py`."""

from __future__ import annotations

import difflib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from sqlalchemy import ColumnElement, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from llmdocs.core.cache import Cache
from llmdocs.core.client import ServiceClient, ServiceError, ServiceUnavailable, UpstreamError
from llmdocs.core.db import Database, utcnow
from llmdocs.core.events import EventBus
from llmdocs.core.events.envelope import Event, make_event
from llmdocs.core.ids import new_id
from llmdocs.core.middleware import correlation_id_var
from llmdocs.services.promptstore import abtest, quality, templates
from llmdocs.services.promptstore.errors import (
    Conflict,
    GatewayRefused,
    GatewayUnavailable,
    Invalid,
    NotFound,
    PromptStoreError,
)
from llmdocs.services.promptstore.models import (
    AbOutcome,
    AbTest,
    Prompt,
    PromptLabel,
    PromptUsage,
    PromptVersion,
    SeenEvent,
)
from llmdocs.services.promptstore.rendering import render
from llmdocs.services.promptstore.schemas import (
    AbAssignment,
    AbResults,
    AbTestIn,
    AbTestOut,
    BiasOut,
    ChatMessage,
    Content,
    DiffOut,
    LintIn,
    LintOut,
    OptimizeIn,
    OptimizeOut,
    OutcomeIn,
    PromptAnalytics,
    PromptIn,
    PromptOut,
    PromptPage,
    PromptPatch,
    Rendered,
    Resolved,
    SearchIn,
    Variable,
    VariantResult,
    VersionIn,
    VersionOut,
    VersionUsage,
)

log = structlog.get_logger(__name__)

SERVICE = "promptstore"
PROMPT_USED = "llmdocs.prompt.used"
LLM_COMPLETED = "llmdocs.llm.completed"
DEFAULT_LABEL = "production"
LATEST = "latest"
CONFIDENCE = 0.95
# allowed lifecycle moves; deprecated may come back to published
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"published", "archived"}),
    "published": frozenset({"deprecated"}),
    "deprecated": frozenset({"published", "archived"}),
    "archived": frozenset(),
}


def template_problem(exc: templates.TemplateProblem) -> Invalid:
    return Invalid(str(exc), exc.errors)


def _stored_content(kind: str, content: Content) -> str:
    if kind == "text":
        if not isinstance(content, str):
            raise Invalid("A text prompt's content is a string.",
                          [{"field": "content", "message": "expected a string"}])
        return content
    if isinstance(content, str) or not content:
        raise Invalid("A chat prompt's content is a non-empty list of {role, content}.",
                      [{"field": "content", "message": "expected a list of messages"}])
    return json.dumps([m.model_dump() for m in content])


def _public_content(kind: str, stored: str) -> Content:
    if kind == "text":
        return stored
    return [ChatMessage.model_validate(m) for m in json.loads(stored)]


def _checked_variables(kind: str, stored: str,
                       declared: list[Variable] | None) -> list[dict[str, Any]]:
    """The variables to store: those declared (every used one must be), else those the
    template uses, all required."""
    try:
        used = templates.variables_of(templates.template_sources(kind, stored))
    except templates.TemplateProblem as exc:
        raise template_problem(exc) from None
    if declared is None:
        return [Variable(name=name).model_dump() for name in used]
    names = [v.name for v in declared]
    if len(set(names)) != len(names):
        raise Invalid("A variable is declared twice.",
                      [{"field": "variables", "message": "names must be unique"}])
    undeclared = [name for name in used if name not in names]
    if undeclared:
        raise Invalid(f"The template uses undeclared variables: {', '.join(undeclared)}.",
                      [{"field": "variables", "message": f"'{name}' is not declared"}
                       for name in undeclared])
    return [v.model_dump() for v in declared]


def _search_text(prompt: Prompt, content: str) -> str:
    tags = " ".join(f"tag:{tag.lower()}" for tag in prompt.tags)
    return f" {prompt.name.lower()} {prompt.description.lower()} {tags} {content.lower()} "


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_USAGE_COLUMNS = ("uses", "renders", "completions", "successes", "failures", "tokens",
                  "cost", "latency_ms_total")


def _usage_delta(event: Event) -> tuple[tuple[str, int], dict[str, float]] | None:
    """What one analytics event adds to its prompt version's usage; None if it names
    no prompt."""
    data = event.data
    prompt_id = data.get("prompt_id")
    if not isinstance(prompt_id, str) or not prompt_id:
        return None
    raw_version = data.get("version" if event.type == PROMPT_USED else "prompt_version")
    version = raw_version if isinstance(raw_version, int) else 0
    if event.type == PROMPT_USED:
        delta: dict[str, float] = {"uses": 1,
                                   "renders": int(data.get("rendered_hash") is not None)}
    else:
        ok = bool(data.get("success", True))
        delta = {"completions": 1, "successes": int(ok), "failures": int(not ok),
                 "tokens": _tokens(data.get("tokens")), "cost": _number(data.get("cost")),
                 "latency_ms_total": _number(data.get("latency_ms"))}
    return (prompt_id, version), delta


def _upsert(dialect: str) -> Any:
    """The dialect's INSERT with ON CONFLICT (both SQLite and PostgreSQL have it)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


class PromptStore:
    """One per app; `gateway` is the llm-gateway client (None: not configured)."""

    def __init__(self, database: Database, cache: Cache, events: EventBus,
                 gateway: ServiceClient | None = None) -> None:
        self.db = database
        self.cache = cache
        self.events = events
        self.gateway = gateway

    # --- reading ---------------------------------------------------------------

    async def _prompt(self, session: AsyncSession, ref: str) -> Prompt:
        """A prompt by id or by name."""
        prompt = (await session.scalars(
            select(Prompt).where(or_(Prompt.id == ref, Prompt.name == ref)))).first()
        if prompt is None:
            raise NotFound(f"No prompt with id or name '{ref}'.")
        return prompt

    async def _version(self, session: AsyncSession, prompt: Prompt, version: int
                       ) -> PromptVersion:
        row = (await session.scalars(select(PromptVersion).where(
            PromptVersion.prompt_id == prompt.id, PromptVersion.version == version))).first()
        if row is None:
            raise NotFound(f"Prompt '{prompt.name}' has no version {version} "
                            f"(latest is {prompt.latest_version}).")
        return row

    async def _labels(self, session: AsyncSession, prompt: Prompt) -> dict[str, int]:
        rows = await session.execute(select(PromptLabel.label, PromptLabel.version).where(
            PromptLabel.prompt_id == prompt.id).order_by(PromptLabel.label))
        labels = {label: version for label, version in rows.all()}
        labels[LATEST] = prompt.latest_version
        return labels

    def _version_out(self, prompt: Prompt, row: PromptVersion,
                     labels: Mapping[str, int]) -> VersionOut:
        return VersionOut(
            version=row.version, content=_public_content(prompt.type, row.content),
            variables=[Variable.model_validate(v) for v in row.variables], config=row.config,
            state=row.state, message=row.message, content_hash=row.content_hash,
            created_by=row.created_by, created_at=row.created_at,
            labels=sorted(k for k, v in labels.items() if v == row.version))

    async def _prompt_out(self, session: AsyncSession, prompt: Prompt) -> PromptOut:
        labels = await self._labels(session, prompt)
        current = await self._version(session, prompt, prompt.latest_version)
        return PromptOut(
            id=prompt.id, name=prompt.name, type=prompt.type,
            category=prompt.category, description=prompt.description, tags=prompt.tags,
            latest_version=prompt.latest_version, forked_from=prompt.forked_from,
            labels=labels, created_by=prompt.created_by, created_at=prompt.created_at,
            updated_at=prompt.updated_at, current=self._version_out(prompt, current, labels))

    async def get(self, ref: str) -> PromptOut:
        async with self.db.session() as session:
            return await self._prompt_out(session, await self._prompt(session, ref))

    async def history(self, ref: str) -> list[VersionOut]:
        async with self.db.session() as session:
            prompt = await self._prompt(session, ref)
            labels = await self._labels(session, prompt)
            rows = await session.scalars(select(PromptVersion).where(
                PromptVersion.prompt_id == prompt.id).order_by(PromptVersion.version.desc()))
            return [self._version_out(prompt, row, labels) for row in rows]

    async def version(self, ref: str, version: int) -> VersionOut:
        async with self.db.session() as session:
            prompt = await self._prompt(session, ref)
            return self._version_out(prompt, await self._version(session, prompt, version),
                                     await self._labels(session, prompt))

    async def search(self, query: SearchIn) -> PromptPage:
        """Every query term must occur in the name, description, tags or latest content
        (case-insensitive); prompts whose name matches more terms come first."""
        terms = query.query.lower().split()
        where: list[ColumnElement[bool]] = [
            Prompt.search_text.like(_like(term), escape="\\") for term in terms]
        where += [Prompt.search_text.like(_like(f" tag:{tag.lower()} "), escape="\\")
                  for tag in query.tags]
        if query.category:
            where.append(Prompt.category == query.category)
        name_hits = sum((case((func.lower(Prompt.name).like(_like(t), escape="\\"), 1),
                              else_=0) for t in terms), start=func.abs(0))
        page = (
            select(Prompt).where(*where).order_by(name_hits.desc(), Prompt.name)
            .limit(query.limit).offset(query.offset))
        async with self.db.session() as session:
            total = (await session.scalar(select(func.count()).select_from(Prompt)
                                          .where(*where))) or 0
            items = [await self._prompt_out(session, p) for p in await session.scalars(page)]
        return PromptPage(items=items, total=total, limit=query.limit, offset=query.offset)

    # --- writing -----------------------------------------------------------------

    def _new_version(self, prompt: Prompt, number: int, body: VersionIn, stored: str,
                     variables: list[dict[str, Any]], by: str) -> PromptVersion:
        return PromptVersion(
            id=new_id(), prompt_id=prompt.id, version=number, content=stored,
            variables=variables, config=body.config, state=body.state, message=body.message,
            content_hash=templates.content_hash(stored), created_by=by, created_at=utcnow())

    async def create(self, body: PromptIn, by: str, forked_from: str | None = None
                     ) -> PromptOut:
        stored = _stored_content(body.type, body.content)
        variables = _checked_variables(body.type, stored, body.variables)
        now = utcnow()
        prompt = Prompt(id=new_id(), name=body.name, type=body.type, category=body.category,
                        description=body.description, tags=body.tags, latest_version=1,
                        forked_from=forked_from, created_by=by, created_at=now,
                        updated_at=now)
        prompt.search_text = _search_text(prompt, stored)
        try:
            async with self.db.transaction() as session:
                session.add(prompt)
                await session.flush()
                row = self._new_version(prompt, 1, body, stored, variables, by)
                session.add(row)
                self._check_labelable(row, body.labels)
                session.add_all(PromptLabel(prompt_id=prompt.id, label=label, version=1,
                                            updated_at=now) for label in body.labels)
        except IntegrityError:
            raise Conflict(f"A prompt named '{body.name}' already exists.") from None
        await self._invalidate(prompt.name)
        return await self.get(prompt.id)

    async def add_version(self, ref: str, body: VersionIn, by: str) -> VersionOut:
        """A new immutable version; optimistic on `latest_version`, so two concurrent
        writers cannot both take the same number."""
        async with self.db.session() as session:
            prompt = await self._prompt(session, ref)
        stored = _stored_content(prompt.type, body.content)
        variables = _checked_variables(prompt.type, stored, body.variables)
        number = prompt.latest_version + 1
        now = utcnow()
        try:
            async with self.db.transaction() as session:
                moved = await session.execute(
                    update(Prompt).where(Prompt.id == prompt.id,
                                         Prompt.latest_version == number - 1)
                    .values(latest_version=number, updated_at=now,
                            search_text=_search_text(prompt, stored)))
                if moved.rowcount != 1:  # type: ignore[attr-defined]
                    raise Conflict("The prompt changed meanwhile; retry.")
                row = self._new_version(prompt, number, body, stored, variables, by)
                self._check_labelable(row, body.labels)
                session.add(row)
                for label in body.labels:
                    await self._put_label(session, prompt.id, label, number)
        except IntegrityError:
            raise Conflict("The prompt changed meanwhile; retry.") from None
        await self._invalidate(prompt.name)
        return await self.version(prompt.id, number)

    async def patch(self, ref: str, body: PromptPatch) -> PromptOut:
        async with self.db.transaction() as session:
            prompt = await self._prompt(session, ref)
            for key, value in body.model_dump(exclude_none=True).items():
                setattr(prompt, key, value)
            latest = await self._version(session, prompt, prompt.latest_version)
            prompt.search_text = _search_text(prompt, latest.content)
            prompt.updated_at = utcnow()
        return await self.get(prompt.id)

    @staticmethod
    def _check_labelable(row: PromptVersion, labels: Sequence[str]) -> None:
        if labels and row.state in ("draft", "archived"):
            raise Conflict(f"Version {row.version} is {row.state}; only published or "
                           "deprecated versions can carry labels.")

    @staticmethod
    async def _put_label(session: AsyncSession, prompt_id: str, label: str,
                         version: int) -> None:
        existing = await session.get(PromptLabel, (prompt_id, label))
        if existing is None:
            session.add(PromptLabel(prompt_id=prompt_id, label=label, version=version,
                                    updated_at=utcnow()))
        else:
            existing.version = version
            existing.updated_at = utcnow()

    async def set_label(self, ref: str, label: str, version: int) -> PromptOut:
        if label == LATEST:
            raise Invalid("'latest' is maintained automatically and cannot be moved.")
        async with self.db.transaction() as session:
            prompt = await self._prompt(session, ref)
            self._check_labelable(await self._version(session, prompt, version), [label])
            await self._put_label(session, prompt.id, label, version)
        await self._invalidate(prompt.name)
        return await self.get(prompt.id)

    async def delete_label(self, ref: str, label: str) -> PromptOut:
        async with self.db.transaction() as session:
            prompt = await self._prompt(session, ref)
            existing = await session.get(PromptLabel, (prompt.id, label))
            if existing is None:
                raise NotFound(f"Prompt '{prompt.name}' has no label '{label}'.")
            await session.delete(existing)
        await self._invalidate(prompt.name)
        return await self.get(prompt.id)

    async def rollback(self, ref: str, label: str, version: int | None) -> PromptOut:
        """Move a label back: to `version`, or to the newest published version older
        than the one it points at."""
        if version is None:
            async with self.db.session() as session:
                prompt = await self._prompt(session, ref)
                current = (await self._labels(session, prompt)).get(label)
                if current is None:
                    raise NotFound(f"Prompt '{prompt.name}' has no label '{label}'.")
                version = await session.scalar(select(func.max(PromptVersion.version)).where(
                    PromptVersion.prompt_id == prompt.id, PromptVersion.version < current,
                    PromptVersion.state == "published"))
                if version is None:
                    raise Conflict(f"No published version before {current} to roll "
                                   f"'{label}' back to.")
        return await self.set_label(ref, label, version)

    async def set_state(self, ref: str, version: int, state: str) -> VersionOut:
        async with self.db.transaction() as session:
            prompt = await self._prompt(session, ref)
            row = await self._version(session, prompt, version)
            if state != row.state:
                if state not in TRANSITIONS[row.state]:
                    allowed = ", ".join(sorted(TRANSITIONS[row.state])) or "none"
                    raise Conflict(f"Version {version} is {row.state}; it can move to: "
                                   f"{allowed}.")
                labels = [k for k, v in (await self._labels(session, prompt)).items()
                          if v == version and k != LATEST]
                if state in ("draft", "archived") and labels:
                    raise Conflict(f"Move the label(s) {', '.join(labels)} off version "
                                   f"{version} before it becomes {state}.")
                row.state = state
        await self._invalidate(prompt.name, (prompt.id, version))
        return await self.version(prompt.id, version)

    async def fork(self, ref: str, name: str, version: int | None, by: str) -> PromptOut:
        """A new prompt (own id, own history from version 1) from a version of this
        one; it gets no labels but `latest` until someone sets them."""
        async with self.db.session() as session:
            prompt = await self._prompt(session, ref)
            row = await self._version(session, prompt, version or prompt.latest_version)
        body = PromptIn(
            name=name, type=prompt.type,
            category=prompt.category, description=prompt.description, tags=prompt.tags,
            content=_public_content(prompt.type, row.content),
            variables=[Variable.model_validate(v) for v in row.variables],
            config=row.config, message=f"forked from {prompt.name} v{row.version}",
            labels=[])
        return await self.create(body, by, forked_from=prompt.id)

    async def diff(self, ref: str, old: int, new: int) -> DiffOut:
        async with self.db.session() as session:
            prompt = await self._prompt(session, ref)
            a = await self._version(session, prompt, old)
            b = await self._version(session, prompt, new)

        def lines(row: PromptVersion) -> list[str]:
            sources = templates.template_sources(prompt.type, row.content)
            if prompt.type == "text":
                return row.content.splitlines(keepends=True)
            roles = [m["role"] for m in json.loads(row.content)]
            return [f"[{role}]\n{source}\n" for role, (_, source) in zip(roles, sources,
                                                                           strict=True)]

        text = "".join(difflib.unified_diff(lines(a), lines(b), f"{prompt.name}@v{old}",
                                            f"{prompt.name}@v{new}"))
        names_a = {str(v["name"]) for v in a.variables}
        names_b = {str(v["name"]) for v in b.variables}
        return DiffOut(prompt_id=prompt.id, from_version=old, to_version=new, diff=text,
                       variables_added=sorted(names_b - names_a),
                       variables_removed=sorted(names_a - names_b),
                       config_changed=a.config != b.config)

    # --- resolving and rendering (cached: the hot path) ----------------------------

    async def _invalidate(self, name: str, *versions: tuple[str, int]) -> None:
        await self.cache.delete(f"head:{name}", *(f"ver:{p}:{v}" for p, v in versions))

    async def _head(self, name: str) -> dict[str, Any] | None:
        """What resolving a name needs besides the version: id, type, labels and the
        running A/B test."""
        async def load() -> dict[str, Any] | None:
            async with self.db.session() as session:
                prompt = (await session.scalars(select(Prompt).where(Prompt.name == name))
                          ).first()
                if prompt is None:
                    return None
                test = (await session.scalars(select(AbTest).where(
                    AbTest.prompt_id == prompt.id, AbTest.status == "running"))).first()
                return {"id": prompt.id, "name": prompt.name, "type": prompt.type,
                        "latest": prompt.latest_version,
                        "labels": await self._labels(session, prompt),
                        "ab": None if test is None else {"test_id": test.id,
                                                         "variants": test.variants}}

        return await self.cache.get_or_load(f"head:{name}", load)

    async def _version_row(self, prompt_id: str, version: int) -> dict[str, Any] | None:
        async def load() -> dict[str, Any] | None:
            async with self.db.session() as session:
                row = (await session.scalars(select(PromptVersion).where(
                    PromptVersion.prompt_id == prompt_id, PromptVersion.version == version))
                       ).first()
                if row is None:
                    return None
                return {"content": row.content, "variables": row.variables,
                        "config": row.config, "state": row.state,
                        "content_hash": row.content_hash}

        return await self.cache.get_or_load(f"ver:{prompt_id}:{version}", load)

    async def resolve(self, name: str, label: str | None = None, version: int | None = None,
                      ab_subject: str | None = None) -> Resolved:
        """The version to use: an explicit version, else the A/B variant of the subject
        when a test runs, else the label (default `production`)."""
        head = await self._head(name)
        if head is None:
            raise NotFound(f"No prompt named '{name}'.")
        ab = head["ab"]
        assignment = None if ab is None else AbAssignment(**ab)
        if version is None and ab is not None and ab_subject is not None and label is None:
            version = abtest.assign(ab["test_id"], ab_subject,
                                    [(v["version"], v["weight"]) for v in ab["variants"]])
            assert assignment is not None
            assignment.variant = version
        elif version is None:
            label = label or DEFAULT_LABEL
            version = head["labels"].get(label)
            if version is None:
                known = ", ".join(sorted(head["labels"]))
                raise NotFound(f"Prompt '{name}' has no label '{label}' (labels: {known}).")
        row = await self._version_row(head["id"], version)
        if row is None:
            raise NotFound(f"Prompt '{name}' has no version {version} "
                            f"(latest is {head['latest']}).")
        return Resolved(
            prompt_id=head["id"], name=name, type=head["type"], version=version,
            label=label, content=_public_content(head["type"], row["content"]),
            variables=[Variable.model_validate(v) for v in row["variables"]],
            config=row["config"], state=row["state"], content_hash=row["content_hash"],
            ab_test=assignment)

    async def used(self, resolved: Resolved, rendered_hash: str | None,
                   subject: str | None) -> None:
        """Publish `llmdocs.prompt.used` (its data is described in the package docstring)."""
        ab = resolved.ab_test
        await self.events.publish(make_event(SERVICE, PROMPT_USED, {
            "prompt_id": resolved.prompt_id, "name": resolved.name,
            "version": resolved.version, "label": resolved.label,
            "rendered_hash": rendered_hash,
            "ab_test": ab.test_id if ab and ab.variant is not None else None,
            "variant": ab.variant if ab else None, "subject": subject,
            "correlation_id": correlation_id_var.get(),
        }, subject=resolved.prompt_id))

    async def render_named(self, name: str, values: Mapping[str, Any], label: str | None,
                           version: int | None, ab_subject: str | None) -> Rendered:
        resolved = await self.resolve(name, label, version, ab_subject)
        rendered = render(resolved, values)
        await self.used(resolved, rendered.rendered_hash, ab_subject)
        return rendered

    # --- A/B tests ---------------------------------------------------------------

    @staticmethod
    def _test_out(test: AbTest) -> AbTestOut:
        return AbTestOut.model_validate(test, from_attributes=True)

    async def create_test(self, body: AbTestIn) -> AbTestOut:
        async with self.db.transaction() as session:
            prompt = await self._prompt(session, body.prompt)
            for variant in body.variants:
                row = await self._version(session, prompt, variant.version)
                if row.state == "archived":
                    raise Conflict(f"Version {row.version} is archived.")
            running = await session.scalar(select(AbTest.id).where(
                AbTest.prompt_id == prompt.id, AbTest.status == "running"))
            if running is not None:
                raise Conflict(f"A/B test {running} is already running on "
                               f"'{prompt.name}'; stop it first.")
            test = AbTest(id=new_id(), prompt_id=prompt.id, name=body.name, status="running",
                          variants=[v.model_dump() for v in body.variants],
                          metric=body.metric, significance=body.significance,
                          min_samples=body.min_samples, auto_stop=body.auto_stop,
                          promote_label=body.promote_label, created_at=utcnow())
            session.add(test)
        await self._invalidate(prompt.name)
        return self._test_out(test)

    async def _test(self, session: AsyncSession, test_id: str) -> AbTest:
        test = await session.get(AbTest, test_id)
        if test is None:
            raise NotFound(f"No A/B test '{test_id}'.")
        return test

    async def get_test(self, test_id: str) -> AbTestOut:
        async with self.db.session() as session:
            return self._test_out(await self._test(session, test_id))

    async def list_tests(self, prompt: str | None) -> list[AbTestOut]:
        query = select(AbTest).order_by(AbTest.created_at.desc())
        async with self.db.session() as session:
            if prompt is not None:
                query = query.where(AbTest.prompt_id == (await self._prompt(session, prompt)).id)
            return [self._test_out(t) for t in await session.scalars(query)]

    async def assignment(self, test_id: str, subject: str) -> int:
        test = await self.get_test(test_id)
        return abtest.assign(test.id, subject,
                             [(v["version"], v["weight"]) for v in test.variants])

    async def _samples(self, session: AsyncSession, test: AbTest
                       ) -> list[tuple[int, abtest.Sample]]:
        column = {
            "success": case((AbOutcome.success.is_(True), 1.0),
                            (AbOutcome.success.is_(False), 0.0), else_=None),
            "score": AbOutcome.score, "latency_ms": AbOutcome.latency_ms,
            "cost": AbOutcome.cost,
        }[test.metric]
        rows = await session.execute(
            select(AbOutcome.version, func.count(column), func.sum(column),
                   func.sum(column * column))
            .where(AbOutcome.test_id == test.id).group_by(AbOutcome.version))
        found = {v: abtest.Sample(int(n), float(s or 0), float(q or 0))
                 for v, n, s, q in rows.all()}
        return [(int(str(v["version"])), found.get(int(str(v["version"])),
                                                   abtest.Sample(0, 0.0, 0.0)))
                for v in test.variants]

    async def results(self, test_id: str) -> AbResults:
        async with self.db.session() as session:
            test = await self._test(session, test_id)
            samples = await self._samples(session, test)
        return _results(test, samples)

    async def record_outcome(self, test_id: str, body: OutcomeIn) -> AbResults:
        """Store one outcome; a test with auto-stop ends itself once a winner is
        significant, and its winner gets the promote label."""
        async with self.db.transaction() as session:
            test = await self._test(session, test_id)
            if test.status != "running":
                raise Conflict(f"A/B test {test_id} is {test.status}.")
            if body.version not in [v["version"] for v in test.variants]:
                raise Invalid(f"Version {body.version} is not a variant of this test.",
                              [{"field": "version", "message": "not a variant"}])
            session.add(AbOutcome(id=new_id(), test_id=test.id, created_at=utcnow(),
                                  **body.model_dump()))
        if test.auto_stop:
            async with self.db.session() as session:
                samples = await self._samples(session, test)
            win = abtest.winner(test.metric, samples, test.significance, test.min_samples)
            if win is not None:
                await self._finish(test_id, "completed", win)
        return await self.results(test_id)

    async def stop_test(self, test_id: str, promote: bool) -> AbResults:
        results = await self.results(test_id)
        if results.test.status != "running":
            raise Conflict(f"A/B test {test_id} is {results.test.status}.")
        await self._finish(test_id, "stopped", results.winner if promote else None)
        return await self.results(test_id)

    async def _finish(self, test_id: str, status: str, winner: int | None) -> None:
        """End a test (once: a concurrent finisher loses) and promote its winner."""
        async with self.db.transaction() as session:
            ended = await session.execute(
                update(AbTest).where(AbTest.id == test_id, AbTest.status == "running")
                .values(status=status, winner=winner, stopped_at=utcnow()))
            if ended.rowcount != 1:  # type: ignore[attr-defined]
                return
            test = await self._test(session, test_id)
            prompt = await self._prompt(session, test.prompt_id)
            if winner is not None and test.promote_label:
                row = await self._version(session, prompt, winner)
                if row.state == "draft":
                    row.state = "published"
                await self._put_label(session, prompt.id, test.promote_label, winner)
        log.info("abtest finished", test_id=test_id, status=status, winner=winner)
        await self._invalidate(prompt.name, *((prompt.id, winner),) if winner else ())

    # --- analytics ---------------------------------------------------------------

    async def apply_events(self, events: list[Event]) -> None:
        """Add `prompt.used` and `llm.completed` events to the usage of their prompt
        versions, each exactly once per event id (the seen-id insert shares the
        transaction). A whole batch is one transaction: one row update per version."""
        deltas = {event.id: found for event in events if (found := _usage_delta(event))}
        if not deltas:
            return
        insert = _upsert(self.db.dialect)
        now = utcnow()
        async with self.db.transaction() as session:
            fresh = set(await session.scalars(
                insert(SeenEvent).values([{"event_id": i, "seen_at": now} for i in deltas])
                .on_conflict_do_nothing().returning(SeenEvent.event_id)))
            totals: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
            for event_id, (key, added) in deltas.items():
                if event_id in fresh:
                    totals[key].update(added)
            table = PromptUsage.__table__
            for (prompt_id, version), delta in totals.items():
                row = {**dict.fromkeys(_USAGE_COLUMNS, 0), **delta}
                await session.execute(
                    insert(PromptUsage)
                    .values(prompt_id=prompt_id, version=version, updated_at=now, **row)
                    .on_conflict_do_update(
                        index_elements=["prompt_id", "version"],
                        set_={"updated_at": now,
                              **{k: table.c[k] + v for k, v in delta.items()}}))

    async def analytics(self, ref: str) -> PromptAnalytics:
        async with self.db.session() as session:
            prompt = await self._prompt(session, ref)
            rows = list(await session.scalars(select(PromptUsage).where(
                PromptUsage.prompt_id == prompt.id).order_by(PromptUsage.version)))
        versions = [_usage(r.version, r.uses, r.renders, r.completions, r.successes,
                           r.failures, r.tokens, r.cost, r.latency_ms_total) for r in rows]
        totals = _usage(0, *(sum(getattr(r, k) for r in rows) for k in (
            "uses", "renders", "completions", "successes", "failures", "tokens", "cost",
            "latency_ms_total")))
        return PromptAnalytics(prompt_id=prompt.id, name=prompt.name, totals=totals,
                               versions=versions)

    # --- quality tools -------------------------------------------------------------

    async def _sources(self, ref: str, version: int | None) -> tuple[
            Prompt, PromptVersion]:
        async with self.db.session() as session:
            prompt = await self._prompt(session, ref)
            return prompt, await self._version(session, prompt,
                                               version or prompt.latest_version)

    async def lint(self, ref: str | None, body: LintIn) -> LintOut:
        if ref is None:
            if body.content is None:
                raise Invalid("Give the content to lint.",
                              [{"field": "content", "message": "required"}])
            kind: str = body.type
            stored = _stored_content(body.type, body.content)
            declared = None if body.variables is None else [v.name for v in body.variables]
        else:
            prompt, row = await self._sources(ref, body.version)
            kind, stored = prompt.type, row.content
            declared = [str(v["name"]) for v in row.variables]
        findings, used, tokens = quality.lint(templates.template_sources(kind, stored),
                                              declared)
        return LintOut(ok=not any(f.severity == "error" for f in findings),
                       findings=findings, variables_used=used, estimated_tokens=tokens)

    async def bias_check(self, ref: str, version: int | None, llm: bool) -> BiasOut:
        prompt, row = await self._sources(ref, version)
        text = "\n".join(s for _, s in templates.template_sources(prompt.type, row.content))
        findings = quality.bias_findings(text)
        if not llm:
            return BiasOut(findings=findings, word_list=quality.WORD_LIST_NAME,
                           llm_check="skipped")
        try:
            answer = await self._query(BIAS_PROMPT.format(text=text), temperature=0.0)
        except PromptStoreError as exc:
            log.warning("bias llm check unavailable", error=exc.detail)
            return BiasOut(findings=findings, word_list=quality.WORD_LIST_NAME,
                           llm_check="unavailable", llm_notes=exc.detail)
        return BiasOut(findings=findings, word_list=quality.WORD_LIST_NAME,
                       llm_check="done", llm_notes=str(answer.get("response", "")).strip())

    async def _query(self, prompt: str, temperature: float) -> dict[str, Any]:
        """One `/query` to the llm-gateway; unreachable or failing → 503 naming it."""
        if self.gateway is None:
            raise GatewayUnavailable("The llm-gateway is not configured for the prompt-store.")
        try:
            answer = await self.gateway.post_json("/query", {
                "prompt": prompt, "max_tokens": 1024, "temperature": temperature})
        except (ServiceUnavailable, UpstreamError) as exc:
            raise GatewayUnavailable(f"The llm-gateway is unavailable: {exc}") from None
        except ServiceError as exc:
            raise GatewayRefused(f"The llm-gateway refused the request: {exc}") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("response"), str):
            raise GatewayRefused("The llm-gateway answered without a 'response' text.")
        return answer

    async def optimize(self, ref: str, body: OptimizeIn, by: str) -> OptimizeOut:
        """Ask the gateway for variations of a text prompt; keep those that parse and use
        exactly the original's variables, as draft versions ready for an A/B test."""
        prompt, row = await self._sources(ref, body.version)
        if prompt.type != "text":
            raise Invalid("Optimization works on text prompts only.")
        needed = set(templates.variables_of([("content", row.content)]))
        created: list[VersionOut] = []
        rejected: list[dict[str, Any]] = []
        answer: dict[str, Any] = {}
        for index in range(body.variations):
            answer = await self._query(OPTIMIZE_PROMPT.format(
                goal=OPTIMIZE_GOALS[body.optimization_type], template=row.content,
                variables=", ".join(sorted(needed)) or "none"), temperature=0.7)
            candidate = _strip_fences(answer["response"])
            reason = _variation_problem(candidate, row.content, needed)
            if reason:
                rejected.append({"index": index, "reason": reason, "text": candidate[:2000]})
                continue
            created.append(await self.add_version(prompt.id, VersionIn(
                content=candidate, variables=[Variable.model_validate(v)
                                              for v in row.variables],
                config=row.config, state="draft",
                message=f"optimize:{body.optimization_type} of v{row.version} via "
                        f"{answer.get('provider')}/{answer.get('model')}"), by))
        return OptimizeOut(prompt_id=prompt.id, base_version=row.version, created=created,
                           rejected=rejected, provider=answer.get("provider"),
                           model=answer.get("model"))


def _results(test: AbTest, samples: list[tuple[int, abtest.Sample]]) -> AbResults:
    weights = {int(str(v["version"])): float(str(v["weight"])) for v in test.variants}
    control = samples[0][1]
    corrected = test.significance / max(1, len(samples) - 1)
    interval = (abtest.proportion_interval if test.metric == "success"
                else abtest.mean_interval)
    variants = []
    for index, (version, sample) in enumerate(samples):
        result = None if index == 0 else abtest.compare(test.metric, control, sample)
        variants.append(VariantResult(
            version=version, weight=weights[version], n=sample.n,
            mean=sample.mean if sample.n else None,
            interval=interval(sample, CONFIDENCE),
            p_value=None if result is None else result.p_value,
            statistic=None if result is None or math.isinf(result.statistic)
            else result.statistic,
            difference=None if result is None else result.difference,
            significant=result is not None and result.p_value < corrected))
    current = test.winner if test.status != "running" else abtest.winner(
        test.metric, samples, test.significance, test.min_samples)
    return AbResults(
        test=AbTestOut.model_validate(test, from_attributes=True), metric=test.metric,
        confidence=CONFIDENCE,
        test_kind="two_proportion_z" if test.metric == "success" else "welch_t",
        variants=variants, winner=current)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else 0.0


def _tokens(value: Any) -> int:
    """`tokens` as an int, or a dict with `total` (or its parts summed)."""
    if isinstance(value, dict):
        if "total" in value:
            return int(_number(value["total"]))
        return int(sum(_number(v) for v in value.values()))
    return int(_number(value))


def _usage(version: int, uses: int, renders: int, completions: int, successes: int,
           failures: int, tokens: int, cost: float, latency: float) -> VersionUsage:
    return VersionUsage(
        version=version, uses=uses, renders=renders, completions=completions,
        successes=successes, failures=failures,
        success_rate=successes / completions if completions else None, tokens=tokens,
        cost=cost, mean_latency_ms=latency / completions if completions else None)


def _strip_fences(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped.strip()


def _variation_problem(candidate: str, original: str, needed: set[str]) -> str | None:
    if not candidate:
        return "empty"
    if candidate == original.strip():
        return "identical to the original"
    try:
        used = set(templates.parse(candidate).variables)
    except templates.TemplateProblem as exc:
        return str(exc)
    if used != needed:
        parts = [f"missing {sorted(needed - used)}" if needed - used else "",
                 f"unknown {sorted(used - needed)}" if used - needed else ""]
        return "variables differ: " + ", ".join(p for p in parts if p)
    return None


OPTIMIZE_GOALS = {
    "clarity": "clearer and less ambiguous",
    "brevity": "shorter without losing any instruction",
    "specificity": "more specific about the expected output",
    "structure": "better structured, with short labelled sections",
}
OPTIMIZE_PROMPT = """Rewrite the prompt template below to make it {goal}.
Keep every Jinja2 placeholder exactly as written (variables: {variables}); add no new ones.
Answer with the rewritten template only, no commentary.

Template:
{template}"""
BIAS_PROMPT = """Review this prompt for biased, exclusionary or stereotyping language.
List each problem on its own line as: phrase - why - neutral alternative.
Answer "none" if there is none.

Prompt:
{text}"""

