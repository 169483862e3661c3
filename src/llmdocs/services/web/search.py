"""The home page: full-text search over the documents the user may read, with
highlighted snippets and filters, and the recent documents."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from markupsafe import Markup

from llmdocs.core.errors import Problem
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.web.pages import PageRoute, User, render, signed_in

router = APIRouter(route_class=PageRoute, include_in_schema=False)
RECENT = 10
PAGE = 20
MARK_START, MARK_END = "<mark>", "</mark>"  # how the doc-store marks a match

Text = Annotated[str | None, Query(max_length=200)]
Day = Annotated[str, Query(max_length=10)]  # YYYY-MM-DD, or empty


def highlighted(snippet: str) -> Markup:
    """A snippet with its matches marked and everything else escaped: the doc-store
    marks matches in the document's own text, which may hold any markup."""
    parts: list[Markup | str] = []
    for i, piece in enumerate(snippet.split(MARK_START)):
        marked, _, rest = piece.partition(MARK_END) if i else ("", "", piece)
        if i:
            parts.append(Markup("<mark>{}</mark>").format(marked))
        parts.append(rest)
    return Markup("").join(parts)  # escapes each str part


def _day(name: str, value: str, end: bool) -> str | None:
    """A date field's day as the doc-store's time bound; empty (a form's blank field):
    none."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Problem(400, f"{name}: {value!r} is not a date (YYYY-MM-DD).") from None
    return datetime.combine(day, time.max if end else time.min, UTC).isoformat()


@router.get("/")
async def home(request: Request, user: User = signed_in,
               q: Annotated[str | None, Query(max_length=500)] = None, tag: Text = None,
               format: Text = None, after: Day = "", before: Day = "",
               stale: Literal["", "stale", "fresh"] = "",
               cursor: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    """Search (with `q`) or, without, the most recently changed documents."""
    docs = user.client(DocStoreClient)
    filters = {key: value for key, value in (
        ("tag", tag or None), ("format", format or None),
        ("created_after", _day("after", after, end=False)),
        ("created_before", _day("before", before, end=True)),
        ("stale", {"stale": "true", "fresh": "false"}.get(stale))) if value}
    query = (q or "").strip()
    if query:
        found = await docs.search(query, limit=PAGE, cursor=cursor or None, **filters)
        more = found.next_cursor and "/?" + urlencode(
            {"q": query, "tag": tag or "", "format": format or "", "after": after,
             "before": before, "stale": stale, "cursor": found.next_cursor})
        return render(request, "search.html", q=query, hits=found.items, more=more,
                      filters=filters, tag=tag or "",
                      format=format or "", after=after, before=before, stale=stale,
                      highlighted=highlighted, recent=[])
    recent = await docs.list(limit=RECENT, sort="-updated_at", **filters)
    return render(request, "search.html", q="", hits=None, more=None,
                  filters=filters, tag=tag or "", format=format or "", after=after,
                  before=before, stale=stale, highlighted=highlighted, recent=recent.items)
