"""Workflow runs: the recent ones with filters, one run's steps, and resuming a run
that failed from its last checkpoint."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import FINISHED, RunStatus
from llmdocs.services.web.pages import PageRoute, User, csrf_checked, render, signed_in

router = APIRouter(route_class=PageRoute, include_in_schema=False)
STATUSES: tuple[str, ...] = get_args(RunStatus)
RESUMABLE = frozenset({"failed", "cancelled"})
LIMITS = (20, 50, 100, 200)
RunId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]
Filter = Annotated[str, Query(max_length=200)]


@router.get("/runs")
async def runs(request: Request, user: User = signed_in, workflow: Filter = "",
               status: Annotated[RunStatus | None, Query()] = None, user_id: Filter = "",
               limit: Annotated[int, Query(ge=1, le=max(LIMITS))] = 50) -> Response:
    """The recent runs the user may see, newest first, filtered."""
    orchestrator = user.client(OrchestratorClient)
    page = await orchestrator.runs(workflow=workflow or None, status=status,
                                   user_id=user_id or None, limit=limit)
    workflows = sorted({w.name for w in await orchestrator.workflows()} | {workflow} - {""})
    return render(request, "runs.html", runs=page.items, workflows=workflows,
                  statuses=STATUSES, limits=LIMITS, workflow=workflow, wanted=status or "",
                  user_id=user_id, limit=limit)


@router.get("/runs/{run_id}")
async def run(request: Request, run_id: RunId, user: User = signed_in) -> Response:
    """One run: what it was asked, each step with its time, and how it ended."""
    found = await user.client(OrchestratorClient).run(run_id)
    longest = max((s.duration_ms for s in found.steps), default=0.0)
    return render(request, "run.html", run=found, longest=longest,
                  resumable=found.status in RESUMABLE, finished=found.status in FINISHED)


@router.post("/runs/{run_id}/resume", dependencies=[csrf_checked])
async def resume(run_id: RunId, user: User = signed_in) -> Response:
    """Run a failed or cancelled run again from its last checkpoint."""
    await user.client(OrchestratorClient).resume_run(run_id)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)
