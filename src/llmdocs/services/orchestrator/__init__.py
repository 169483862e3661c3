"""Orchestrator: service registry, workflow definitions and runs (LangGraph), tool catalog."""

from __future__ import annotations

from fastapi import APIRouter

from llmdocs.core.service import ServiceSpec


def _router() -> APIRouter:
    from llmdocs.services.orchestrator.api import router

    return router


spec = ServiceSpec(
    key="orchestrator",
    name="orchestrator",
    title="Orchestrator",
    description="service registry, workflow definitions and runs (LangGraph), tool catalog.",
    scope="workflows",
    router=_router,
    calls=("gateway", "promptstore", "docstore"),
)
