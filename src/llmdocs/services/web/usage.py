"""Usage: what the models cost, by user, model and day, as charts drawn on the server
(each with its numbers as a table), and the budgets with what is left of them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from llmdocs.core.db import utcnow
from llmdocs.services.gateway.client import GatewayClient
from llmdocs.services.web.charts import bar_chart, dollars
from llmdocs.services.web.pages import PageRoute, User, render, signed_in
from llmdocs.services.web.partial import part

router = APIRouter(route_class=PageRoute, include_in_schema=False)
DEFAULT_DAYS = 30
ADMIN = "llm:admin"  # sees everyone's usage


def _left(budget: dict[str, Any]) -> dict[str, Any]:
    """A budget with what is left of its current window (never below nothing)."""
    used = float(budget["spent_usd"]) + float(budget["reserved_usd"])
    return {**budget, "used_usd": used, "left_usd": max(0.0, float(budget["limit_usd"]) - used)}


@router.get("/usage")
async def usage(request: Request, user: User = signed_in,
                since: Annotated[date | None, Query()] = None,
                user_id: Annotated[str, Query(max_length=200)] = "") -> Response:
    """Spend since a day (the last 30 days by default): the user's own, or anyone's for
    an admin; the budgets, to whom the gateway shows them."""
    start = since or (utcnow().date() - timedelta(days=DEFAULT_DAYS))
    admin = user.principal.allows(ADMIN)
    gateway = user.client(GatewayClient)
    spent = await gateway.usage(user_id or None, start.isoformat())
    budgets = await part(gateway.budgets())  # the gateway says whether they may
    charts = [bar_chart(title, ((str(row["key"]), float(row["cost"]))
                                for row in spent[group]), dollars)
              for title, group in (("Spend by day", "by_day"), ("Spend by model", "by_model"),
                                   ("Spend by user", "by_user"))]
    return render(request, "usage.html", usage=spent, charts=charts, since=start,
                  user_id=user_id, admin=admin, dollars=dollars,
                  budgets=[_left(b) for b in budgets.value or []], budgets_note=budgets.note)
