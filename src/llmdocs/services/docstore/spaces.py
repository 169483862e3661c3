"""Spaces and their members, which the doc-store keeps for every service (core.spaces),
and the checks that keep a document of a space its caller is no member of out of
sight: such a document is missing, with the same words as one that never was."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError

from llmdocs.core.auth import Principal
from llmdocs.core.db import Database, utcnow
from llmdocs.core.spaces import ROLES, Memberships, Role, SpaceView
from llmdocs.services.docstore.errors import (
    DocStoreError,
    Exists,
    Forbidden,
    NotFoundError,
    Rejected,
)
from llmdocs.services.docstore.models import DOCUMENTS, MEMBERS, SPACES
from llmdocs.services.docstore.schemas import MemberOut, SpaceOut


def missing(doc_id: str) -> NotFoundError:
    """The one answer for a document that is not there or not the caller's to see."""
    return NotFoundError(f"No document {doc_id!r}.")


def unknown_space(name: str) -> Rejected:
    """An unknown space and one the caller is no member of read alike."""
    return Rejected(f"No space {name!r} that you are a member of; `llmdocs spaces list` "
                    "shows yours.", field="space")


def write_refusal(space: str, view: SpaceView, existing: Collection[str]
                  ) -> DocStoreError | None:
    """Why the caller may not store a document in `space`, if they may not."""
    if space not in existing or not view.may_read(space):
        return unknown_space(space)
    if not view.may_write(space):
        return Forbidden(f"Your role in the space {space!r} does not allow writing.")
    return None


class Spaces:
    """The spaces, their members, and the space checks of documents (a part of the
    store, on its database)."""

    db: Database

    async def memberships(self, app: FastAPI, principal: Principal) -> Memberships:
        """A subject's roles by space: core.spaces' lookup, straight from the table."""
        async with self.db.reader() as conn:
            rows = await conn.execute(sa.select(MEMBERS.c.space, MEMBERS.c.role)
                                      .where(MEMBERS.c.subject == principal.subject))
            return {space: role for space, role in rows if role in ROLES}

    async def spaces_of(self, view: SpaceView) -> list[SpaceOut]:
        visible = view.visible()
        stmt = sa.select(SPACES).order_by(SPACES.c.name)
        if visible is not None:
            stmt = stmt.where(SPACES.c.name.in_(visible))
        async with self.db.reader() as conn:
            rows = (await conn.execute(stmt)).all()
        return [SpaceOut(name=row.name, description=row.description, created_by=row.created_by,
                         created_at=row.created_at, role=view.role(row.name)) for row in rows]

    async def create_space(self, name: str, description: str, creator: Principal
                           ) -> SpaceOut:
        """A new space; a user who makes one is its first admin."""
        now = utcnow()
        try:
            async with self.db.transaction() as session:
                await session.execute(sa.insert(SPACES).values(
                    name=name, description=description, created_by=creator.subject,
                    created_at=now))
                if not creator.is_service:
                    await session.execute(sa.insert(MEMBERS).values(
                        space=name, subject=creator.subject, role="admin",
                        granted_by=creator.subject, granted_at=now))
        except IntegrityError:
            raise Exists(f"The space {name!r} exists already.", field="name") from None
        return SpaceOut(name=name, description=description, created_by=creator.subject,
                        created_at=now, role=None if creator.is_service else "admin")

    async def members(self, name: str, view: SpaceView, override: bool = False
                      ) -> list[MemberOut]:
        await self.space_for(name, view, override=override)
        async with self.db.reader() as conn:
            rows = (await conn.execute(sa.select(MEMBERS).where(MEMBERS.c.space == name)
                                       .order_by(MEMBERS.c.subject))).all()
        return [MemberOut(space=row.space, subject=row.subject, role=row.role,
                          granted_by=row.granted_by, granted_at=row.granted_at)
                for row in rows]

    async def space_for(self, name: str, view: SpaceView, admin: bool = False,
                        override: bool = False) -> None:
        """That the space exists and the caller sees it (else it is missing), and with
        `admin`, that they may grant there; `override` (docs:admin) may in any space."""
        async with self.db.reader() as conn:
            found = (await conn.execute(sa.select(SPACES.c.name).where(
                SPACES.c.name == name))).first()
        if found is None or not (override or view.may_read(name)):
            raise NotFoundError(f"No space {name!r}.")
        if admin and not (override or view.may_admin(name)):
            raise Forbidden(f"Granting in {name!r} takes the admin role there (or docs:admin).")

    async def grant(self, name: str, subject: str, role: Role, by: str) -> MemberOut:
        now = utcnow()
        async with self.db.transaction() as session:
            changed = await session.execute(
                sa.update(MEMBERS).where(MEMBERS.c.space == name, MEMBERS.c.subject == subject)
                .values(role=role, granted_by=by, granted_at=now))
            if getattr(changed, "rowcount", 0) == 0:
                await session.execute(sa.insert(MEMBERS).values(
                    space=name, subject=subject, role=role, granted_by=by, granted_at=now))
        return MemberOut(space=name, subject=subject, role=role, granted_by=by, granted_at=now)

    async def revoke(self, name: str, subject: str) -> None:
        async with self.db.transaction() as session:
            gone = await session.execute(sa.delete(MEMBERS).where(
                MEMBERS.c.space == name, MEMBERS.c.subject == subject))
        if getattr(gone, "rowcount", 0) == 0:
            raise NotFoundError(f"{subject!r} is no member of {name!r}.")

    async def existing(self, names: Iterable[str]) -> set[str]:
        """Which of these spaces exist."""
        async with self.db.reader() as conn:
            return set((await conn.execute(sa.select(SPACES.c.name).where(
                SPACES.c.name.in_(set(names))))).scalars())

    async def check_write(self, space: str, view: SpaceView) -> None:
        """A new document's space: known and seen (else 422), and writable (else 403)."""
        refused = write_refusal(space, view, await self.existing([space]))
        if refused is not None:
            raise refused

    async def check_document(self, doc_id: str, view: SpaceView, write: bool = False) -> None:
        """A document's space lets the caller see it (else it is missing) and, with
        `write`, change it (else 403). Deleted documents count: restoring needs it."""
        if view.everything:
            return
        async with self.db.reader() as conn:
            space = (await conn.execute(sa.select(DOCUMENTS.c.space).where(
                DOCUMENTS.c.id == doc_id))).scalar()
        if space is None or not view.may_read(space):
            raise missing(doc_id)
        if write and not view.may_write(space):
            raise Forbidden(f"Your role in the space {space!r} does not allow changing "
                            "its documents.")

    async def check_targets(self, targets: Collection[str], view: SpaceView) -> None:
        """Relation targets the caller cannot see are refused as missing ones are."""
        hidden = await self.hidden(targets, view) if not view.everything else set()
        if hidden:
            raise Rejected(f"Relation targets do not exist: {', '.join(sorted(hidden))}.",
                           field="relations")

    async def hidden(self, ids: Collection[str], view: SpaceView) -> set[str]:
        """Which of `ids` the caller may not see (missing ones included)."""
        visible = view.visible()
        if not ids:
            return set()
        stmt = sa.select(DOCUMENTS.c.id).where(DOCUMENTS.c.id.in_(set(ids)))
        if visible is not None:
            stmt = stmt.where(DOCUMENTS.c.space.in_(visible))
        async with self.db.reader() as conn:
            seen = set((await conn.execute(stmt)).scalars())
        return set(ids) - seen
