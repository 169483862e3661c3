"""LLM gateway: the one door to every LLM provider:
routing, security filter, cache, usage, cost, budgets.
"""

from __future__ import annotations

from fastapi import APIRouter

from llmdocs.core.service import ServiceSpec


def _router() -> APIRouter:
    from llmdocs.services.gateway.api import router

    return router


spec = ServiceSpec(
    key="gateway",
    name="llm-gateway",
    title="LLM gateway",
    description=(
        "the one door to every LLM provider: "
        "routing, security filter, cache, usage, cost, budgets."
    ),
    scope="llm",
    router=_router,
    calls=(),
)
