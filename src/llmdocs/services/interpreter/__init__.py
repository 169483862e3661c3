"""Interpreter: turns a request into an intent and
a workflow; output formats; provenance and download.
"""

from __future__ import annotations

from fastapi import APIRouter

from llmdocs.core.service import ServiceSpec


def _router() -> APIRouter:
    from llmdocs.services.interpreter.api import router

    return router


spec = ServiceSpec(
    key="interpreter",
    name="interpreter",
    title="Interpreter",
    description=(
        "turns a request into an intent and "
        "a workflow; output formats; provenance and download."
    ),
    scope="queries",
    router=_router,
    calls=("orchestrator", "gateway", "docstore"),
)
