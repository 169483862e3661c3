"""Discovery agent: probes services (health, OpenAPI), analyses
capabilities, generates tools, watches health.
"""

from __future__ import annotations

from fastapi import APIRouter

from llmdocs.core.service import ServiceSpec


def _router() -> APIRouter:
    from llmdocs.services.discovery.api import router

    return router


spec = ServiceSpec(
    key="discovery",
    name="discovery-agent",
    title="Discovery agent",
    description=(
        "probes services (health, OpenAPI), analyses "
        "capabilities, generates tools, watches health."
    ),
    scope="services",
    router=_router,
    calls=("orchestrator",),
)
