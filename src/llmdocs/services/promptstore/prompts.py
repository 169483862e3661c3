"""Prompts, their versions, labels and lifecycle, and resolving and rendering them
(cached: the hot path); the other concerns build on the `Prompts` class here."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from llmdocs.core.audit import touched
from llmdocs.core.cache import Cache
from llmdocs.core.client import ServiceClient
from llmdocs.core.db import Database, utcnow
from llmdocs.core.events import EventBus
from llmdocs.core.events.envelope import make_event
from llmdocs.core.idempotency import IdempotencyKeys
from llmdocs.core.ids import new_id
from llmdocs.core.middleware import correlation_id_var
from llmdocs.core.spaces import DEFAULT_SPACE, SpaceView
from llmdocs.services.promptstore import abtest, schemas, templates
from llmdocs.services.promptstore.errors import (
    Conflict,
    Invalid,
    NotFound,
)
from llmdocs.services.promptstore.models import (
    AbTest,
    IdempotencyKey,
    Prompt,
    PromptLabel,
    PromptVersion,
)
from llmdocs.services.promptstore.rendering import render
from llmdocs.services.promptstore.schemas import (
    AbAssignment,
    ChatMessage,
    Content,
    DiffOut,
    PromptIn,
    PromptOut,
    PromptPage,
    PromptPatch,
    Rendered,
    Resolved,
    Variable,
    VersionIn,
    VersionOut,
)
from llmdocs.services.promptstore.spaces import visible_prompts

SERVICE = "promptstore"
# published on every by-name fetch and render: {prompt_id, name, version, label,
# rendered_hash (null for a fetch), ab_test, variant, subject, correlation_id}
PROMPT_USED = "llmdocs.prompt.used"
# consumed with PROMPT_USED (group promptstore-analytics, idempotent on event id): reads
# prompt_id (else ignored), prompt_version (else 0), tokens (int, or a dict with total or
# parts), cost, latency_ms and success (default true)
LLM_COMPLETED = "llmdocs.llm.completed"
DEFAULT_LABEL = "production"
LATEST = "latest"
# allowed lifecycle moves; deprecated may come back to published
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"published", "archived"}),
    "published": frozenset({"deprecated"}),
    "deprecated": frozenset({"published", "archived"}),
    "archived": frozenset(),
}


def template_problem(exc: templates.TemplateProblem) -> Invalid:
    return Invalid(str(exc), exc.errors)


def stored_content(kind: str, content: Content) -> str:
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
    """What search matches. The content's words, sorted and each once: searching
    (every whitespace-free term a substring) finds what it found in the text, and the
    prompt's sentences, encrypted in its versions, are not left readable here."""
    tags = " ".join(f"tag:{tag.lower()}" for tag in prompt.tags)
    words = " ".join(sorted(set(content.lower().split())))
    return f" {prompt.name.lower()} {prompt.description.lower()} {tags} {words} "


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"



class Prompts:
    """Prompts and their versions; `gateway` is the llm-gateway client (None: none)."""

    def __init__(self, database: Database, cache: Cache, events: EventBus,
                 gateway: ServiceClient | None = None) -> None:
        self.db = database
        self.cache = cache
        self.events = events
        self.gateway = gateway
        self.keys = IdempotencyKeys(database, IdempotencyKey)

    # --- reading ---------------------------------------------------------------

    async def _prompt(self, session: AsyncSession, ref: str) -> Prompt:
        """A prompt by id or by name."""
        prompt = (await session.scalars(
            select(Prompt).where(or_(Prompt.id == ref, Prompt.name == ref)))).first()
        if prompt is None:
            raise NotFound(f"No prompt with id or name '{ref}'.")
        touched(prompt.space)
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
            id=prompt.id, name=prompt.name, space=prompt.space, type=prompt.type,
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

    async def search(self, query: schemas.SearchIn, view: SpaceView) -> PromptPage:
        """Every query term must occur in the name, description, tags or latest content
        (case-insensitive); prompts whose name matches more terms come first. Only
        prompts of the caller's spaces count."""
        terms = query.query.lower().split()
        where: list[ColumnElement[bool]] = [
            Prompt.search_text.like(_like(term), escape="\\") for term in terms]
        where += visible_prompts(view)
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
        stored = stored_content(body.type, body.content)
        variables = _checked_variables(body.type, stored, body.variables)
        now = utcnow()
        prompt = Prompt(id=new_id(), name=body.name, space=body.space, type=body.type,
                        category=body.category,
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
        stored = stored_content(prompt.type, body.content)
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

    async def fork(self, ref: str, name: str, version: int | None, by: str,
                   space: str | None = None) -> PromptOut:
        """A new prompt (own id, own history from version 1) from a version of this
        one, in `space` (default: the original's); it gets no labels but `latest` until
        someone sets them."""
        async with self.db.session() as session:
            prompt = await self._prompt(session, ref)
            row = await self._version(session, prompt, version or prompt.latest_version)
        body = PromptIn(
            name=name, type=prompt.type,
            category=prompt.category, description=prompt.description, tags=prompt.tags,
            content=_public_content(prompt.type, row.content),
            variables=[Variable.model_validate(v) for v in row.variables],
            config=row.config, message=f"forked from {prompt.name} v{row.version}",
            labels=[], space=space or prompt.space)
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
                return {"id": prompt.id, "name": prompt.name, "space": prompt.space,
                        "type": prompt.type,
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
            prompt_id=head["id"], name=name, space=head.get("space", DEFAULT_SPACE),
            type=head["type"], version=version,
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
        }, subject=resolved.prompt_id, space=resolved.space))

    async def render_named(self, name: str, values: Mapping[str, Any], label: str | None,
                           version: int | None, ab_subject: str | None) -> Rendered:
        resolved = await self.resolve(name, label, version, ab_subject)
        rendered = render(resolved, values)
        await self.used(resolved, rendered.rendered_hash, ab_subject)
        return rendered
