"""The space checks of prompts and A/B tests (core.spaces): a prompt of a space the
caller is no member of is missing, in the same words as one that never was; writing
takes an editor's role there."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select

from llmdocs.core.db import Database
from llmdocs.core.spaces import SpaceView
from llmdocs.services.promptstore.errors import Forbidden, Invalid, NotFound
from llmdocs.services.promptstore.models import AbTest, Prompt


def visible_prompts(view: SpaceView) -> list[ColumnElement[bool]]:
    """The condition that a prompt is in the caller's spaces (none: every space)."""
    visible = view.visible()
    return [] if visible is None else [Prompt.space.in_(visible)]


def check_new(space: str, view: SpaceView) -> None:
    """A new prompt's space: one the caller sees (else 422, as an unknown one) and may
    write in (else 403)."""
    if not view.may_read(space):
        raise Invalid(f"No space {space!r} that you are a member of; `llmdocs spaces list` "
                      "shows yours.", [{"field": "space", "message": "unknown space"}])
    if not view.may_write(space):
        raise Forbidden(f"Your role in the space {space!r} does not allow writing.")


def _allowed(space: str | None, view: SpaceView, write: bool, missing: NotFound) -> None:
    if space is None or not view.may_read(space):
        raise missing
    if write and not view.may_write(space):
        raise Forbidden(f"Your role in the space {space!r} does not allow changing its "
                        "prompts.")


class PromptSpaces:
    """Checks a route makes before it touches a prompt or an A/B test by reference."""

    db: Database

    async def check_prompt(self, ref: str, view: SpaceView, write: bool = False,
                           by_name: bool = False) -> None:
        if view.everything:
            return
        named = Prompt.name == ref
        async with self.db.session() as session:
            space = await session.scalar(select(Prompt.space).where(
                named if by_name else or_(Prompt.id == ref, named)).limit(1))
        _allowed(space, view, write, NotFound(
            f"No prompt named '{ref}'." if by_name else f"No prompt with id or name '{ref}'."))

    async def check_test(self, test_id: str, view: SpaceView, write: bool = False) -> None:
        if view.everything:
            return
        async with self.db.session() as session:
            space = await session.scalar(select(Prompt.space).join(
                AbTest, AbTest.prompt_id == Prompt.id).where(AbTest.id == test_id))
        _allowed(space, view, write, NotFound(f"No A/B test '{test_id}'."))
