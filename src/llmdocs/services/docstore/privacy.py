"""What the doc-store holds about a person: the documents they own (their author) with
every version and blob, versions they wrote of others' documents, metadata and
provenance naming them, their space memberships and the spaces they made. Erasure
deletes or transfers what they own and names them by pseudonym where a record stays."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder

from llmdocs.core.privacy import Erasure, Records
from llmdocs.core.pseudonymise import dropped, naming, renamed, replaced, rewritten
from llmdocs.core.sqlite import in_thread
from llmdocs.services.docstore.models import Document as Doc
from llmdocs.services.docstore.models import (
    IdempotencyKey,
    Member,
    Space,
    Version,
)
from llmdocs.services.docstore.service import DocStore

# the columns a version is exported with: its text, never a blob's bytes (a key names it)
VERSION_FIELDS = ("document_id", "version", "is_current", "title", "content", "blob_key",
                  "filename", "media_type", "size", "content_hash", "provenance", "author",
                  "message", "created_at")


def _row(model: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {field: getattr(model, field) for field in fields}


class DocSubjectData:
    """The doc-store's part of a privacy request (core.privacy)."""

    def __init__(self, store: DocStore) -> None:
        self.store = store
        self.db = store.db

    async def export(self, subject: str) -> Records:
        async with self.db.session() as session:
            owned = (await session.scalars(sa.select(Doc).where(Doc.author == subject)
                                           .order_by(Doc.created_at))).all()
            owned_ids = [doc.id for doc in owned]
            versions = (await session.scalars(sa.select(Version).where(
                Version.document_id.in_(owned_ids) | (Version.author == subject))
                .order_by(Version.document_id, Version.version))).all()
            named = (await session.scalars(sa.select(Doc).where(
                naming(Doc.meta, subject), Doc.author != subject))).all()
            members = (await session.scalars(sa.select(Member).where(
                (Member.subject == subject) | (Member.granted_by == subject)))).all()
            spaces = (await session.scalars(sa.select(Space).where(
                Space.created_by == subject))).all()
        doc_fields = ("id", "space", "title", "format", "source", "author", "version",
                      "meta", "created_at", "updated_at", "deleted_at")
        records: Records = jsonable_encoder({
            "documents": [_row(doc, doc_fields) for doc in owned],
            "versions": [_row(v, VERSION_FIELDS) for v in versions],
            "documents_naming": [_row(doc, doc_fields) for doc in named
                                 if replaced(doc.meta, subject, "\0") != doc.meta],
            "space_memberships": [_row(m, ("space", "subject", "role", "granted_by",
                                           "granted_at")) for m in members],
            "spaces_created": [_row(s, ("name", "description", "created_by", "created_at"))
                               for s in spaces]})
        return records

    async def erase(self, erasure: Erasure) -> dict[str, int]:
        subject, alias = erasure.subject, erasure.pseudonym
        async with self.db.session() as session:
            owned = list((await session.scalars(sa.select(Doc.id).where(
                Doc.author == subject))).all())
        done: dict[str, int] = {}
        if erasure.owned_documents == "delete":
            for doc_id in owned:  # rows, search entries and blobs, as a hard delete does
                await self.store.hard_delete(doc_id)
            done["documents deleted"] = len(owned)
        else:
            async with self.db.transaction() as session:
                await session.execute(sa.update(Doc).where(Doc.id.in_(owned))
                                      .values(author=erasure.transfer_to))
            done["documents transferred"] = len(owned)
        with in_thread():  # scans metadata and provenance of every document
            async with self.db.transaction() as session:
                done["versions pseudonymised"] = await renamed(
                    session, Version.author, subject, alias)
                done["space memberships deleted"] = await dropped(
                    session, sa.delete(Member).where(Member.subject == subject))
                await renamed(session, Member.granted_by, subject, alias)
                done["spaces pseudonymised"] = await renamed(
                    session, Space.created_by, subject, alias)
                done["metadata pseudonymised"] = (
                    await rewritten(session, Doc.meta, subject, alias)
                    + await rewritten(session, Version.provenance, subject, alias))
                # a service's acting for them names them in its kept answer
                done["keyed answers deleted"] = await dropped(
                    session, sa.delete(IdempotencyKey).where(
                        (IdempotencyKey.principal == subject)
                        | naming(IdempotencyKey.response, subject)))
        return done


def subject_data(app: FastAPI) -> DocSubjectData:
    """Built by the kernel once the lifespan made the store."""
    return DocSubjectData(app.state.docstore)
