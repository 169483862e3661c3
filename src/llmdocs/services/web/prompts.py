"""Prompts: the list, a prompt's versions with their labels and a diff of any two, and
its A/B tests with each variant's results and significance."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from llmdocs.services.promptstore.client import PromptStoreClient
from llmdocs.services.promptstore.schemas import DiffOut
from llmdocs.services.web.pages import PageRoute, User, render, signed_in
from llmdocs.services.web.partial import part

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE = 50
INT4_MAX = 2**31 - 1
Ref = Annotated[str, Path(min_length=1, max_length=200)]
TestId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]
Version = Annotated[int | None, Query(ge=1, le=INT4_MAX)]
Filter = Annotated[str, Query(max_length=200)]


@dataclass(frozen=True)
class DiffLine:
    kind: str  # add | del | gap | same
    text: str


def diff_lines(diff: DiffOut) -> list[DiffLine]:
    """The prompt-store's unified diff, a line at a time, each marked by what it is."""
    lines: list[DiffLine] = []
    for line in diff.diff.splitlines():
        if line.startswith(("+++", "---")):
            continue  # the file names: the page's heading says which versions
        kind = {"+": "add", "-": "del", "@": "gap"}.get(line[:1], "same")
        lines.append(DiffLine(kind, line))
    return lines


@router.get("/prompts")
async def prompts(request: Request, user: User = signed_in, category: Filter = "",
                  tag: Filter = "",
                  offset: Annotated[int, Query(ge=0, le=INT4_MAX)] = 0) -> Response:
    """The prompts the user may see, by category and tag, and the A/B tests."""
    store = user.client(PromptStoreClient)
    page, tests = await asyncio.gather(
        store.list_prompts(category or None, tag or None, limit=PAGE, offset=offset),
        part(store.tests()))
    return render(request, "prompts.html", page=page, tests=tests, category=category,
                  tag=tag, offset=offset, limit=PAGE)


@router.get("/prompts/{ref}")
async def prompt(request: Request, ref: Ref, user: User = signed_in,
                 from_version: Annotated[Version, Query(alias="from")] = None,
                 to_version: Annotated[Version, Query(alias="to")] = None) -> Response:
    """A prompt: its versions and labels, a diff of two versions (by default the latest
    against the one before), its A/B tests and its use per version."""
    store = user.client(PromptStoreClient)
    found = await store.prompt(ref)
    history, tests, analytics = await asyncio.gather(
        store.history(found.id), part(store.tests(found.id)), part(store.analytics(found.id)))
    newest = found.latest_version
    to_v = to_version or newest
    from_v = from_version or max(1, to_v - 1)
    diff = None
    if from_v != to_v:
        diff = diff_lines(await store.diff(found.id, from_v, to_v))
    return render(request, "prompt.html", prompt=found, history=history, tests=tests,
                  analytics=analytics, diff=diff, from_version=from_v, to_version=to_v)


@router.get("/prompts/abtests/{test_id}")
async def abtest(request: Request, test_id: TestId, user: User = signed_in) -> Response:
    """An A/B test: each variant's samples, mean with its interval, p-value against the
    control, and whether the difference is significant at the test's level."""
    results = await user.client(PromptStoreClient).test_results(test_id)
    return render(request, "abtest.html", results=results)
