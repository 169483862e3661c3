"""A part of a page that may be missing: what a service refused or could not answer
becomes a readable note in its place, and the rest of the page still shows."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Generic, TypeVar

from llmdocs.core.client import Forbidden, ServiceError

T = TypeVar("T")


@dataclass(frozen=True)
class Part(Generic[T]):
    value: T | None
    note: str | None = None  # why the part is missing, for the reader


def said(exc: ServiceError) -> str:
    """A service's refusal or outage in words a reader can act on."""
    if isinstance(exc, Forbidden):
        return f"You may not see this: {exc.problem.get('detail') or 'not allowed'}"
    if exc.outage is not None:
        return f"The {exc.service} service is not answering right now; try again soon."
    return str(exc.problem.get("detail") or f"The {exc.service} service answered "
               f"{exc.status}.")


async def part(call: Awaitable[T]) -> Part[T]:
    """The call's answer, or a note saying why there is none."""
    try:
        return Part(await call)
    except ServiceError as exc:
        return Part(None, said(exc))
