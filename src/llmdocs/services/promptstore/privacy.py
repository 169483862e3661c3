"""What the prompt-store holds about a person: prompts they created (with versions,
labels, A/B tests and analytics), versions they wrote of others' prompts, A/B outcomes
recorded for them. A prompt they created is written content, like a document: deleted
or transferred as the erasure says. A version of someone else's prompt stays (the team's
prompt works on) but names its author by pseudonym, as do their A/B outcomes (the test's
numbers stay true)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder

from llmdocs.core.db import Database
from llmdocs.core.privacy import Erasure, Records, forget_keys
from llmdocs.core.pseudonymise import dropped, renamed
from llmdocs.services.promptstore.models import (
    AbOutcome,
    IdempotencyKey,
    Prompt,
    PromptUsage,
    PromptVersion,
)

PROMPT_FIELDS = ("id", "name", "space", "type", "category", "description", "tags",
                 "latest_version", "forked_from", "created_by", "created_at", "updated_at")
VERSION_FIELDS = ("prompt_id", "version", "content", "variables", "config", "state",
                  "message", "content_hash", "created_by", "created_at")


class PromptSubjectData:
    """The prompt-store's part of a privacy request (core.privacy)."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def export(self, subject: str) -> Records:
        async with self.db.session() as session:
            prompts = (await session.scalars(sa.select(Prompt).where(
                Prompt.created_by == subject).order_by(Prompt.created_at))).all()
            ids = [p.id for p in prompts]
            versions = (await session.scalars(sa.select(PromptVersion).where(
                PromptVersion.prompt_id.in_(ids) | (PromptVersion.created_by == subject))
                .order_by(PromptVersion.prompt_id, PromptVersion.version))).all()
            outcomes = (await session.scalars(sa.select(AbOutcome).where(
                AbOutcome.subject == subject).order_by(AbOutcome.created_at))).all()
        records: Records = jsonable_encoder({
            "prompts": [{f: getattr(p, f) for f in PROMPT_FIELDS} for p in prompts],
            "prompt_versions": [{f: getattr(v, f) for f in VERSION_FIELDS}
                                for v in versions],
            "ab_outcomes": [{"test_id": o.test_id, "version": o.version,
                             "success": o.success, "score": o.score,
                             "latency_ms": o.latency_ms, "cost": o.cost,
                             "created_at": o.created_at} for o in outcomes]})
        return records

    async def erase(self, erasure: Erasure) -> dict[str, int]:
        subject, alias = erasure.subject, erasure.pseudonym
        done: dict[str, int] = {}
        async with self.db.transaction() as session:
            ids = list((await session.scalars(sa.select(Prompt.id).where(
                Prompt.created_by == subject))).all())
            if erasure.owned_documents == "delete":
                # versions, labels, tests and outcomes go with it (cascade); analytics too
                await dropped(session, sa.delete(PromptUsage).where(
                    PromptUsage.prompt_id.in_(ids)))
                done["prompts deleted"] = await dropped(
                    session, sa.delete(Prompt).where(Prompt.id.in_(ids)))
            else:
                await session.execute(sa.update(Prompt).where(Prompt.id.in_(ids))
                                      .values(created_by=erasure.transfer_to))
                done["prompts transferred"] = len(ids)
            done["prompt versions pseudonymised"] = await renamed(
                session, PromptVersion.created_by, subject, alias)
            done["ab outcomes pseudonymised"] = await renamed(
                session, AbOutcome.subject, subject, alias)
        done["keyed answers deleted"] = await forget_keys(self.db, IdempotencyKey, subject)
        return done


def subject_data(app: FastAPI) -> PromptSubjectData:
    return PromptSubjectData(app.state.resources.database)
