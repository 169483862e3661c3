"""Prompt store: versioned prompts, labels, A/B tests and prompt analytics."""

from __future__ import annotations

from fastapi import APIRouter

from llmdocs.core.service import ServiceSpec


def _router() -> APIRouter:
    from llmdocs.services.promptstore.api import router

    return router


spec = ServiceSpec(
    key="promptstore",
    name="prompt-store",
    title="Prompt store",
    description="versioned prompts, labels, A/B tests and prompt analytics.",
    scope="prompts",
    router=_router,
    calls=("gateway",),
)
