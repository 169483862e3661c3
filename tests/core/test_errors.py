"""Domain errors become problems in one place, each with the status of its kind."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from llmdocs.core.errors import PROBLEM_JSON, DomainError, domain_problems, install_error_handlers


class Missing(DomainError):
    """Mapped to 404."""


class MissingVersion(Missing):
    """Added later and not in the table: it maps as its parent."""


class Unmapped(DomainError):
    """In no table: a bug, not a refusal."""


def app_raising(error: DomainError) -> FastAPI:
    router = APIRouter(dependencies=[Depends(domain_problems({Missing: 404}))])

    @router.get("/thing")
    async def thing() -> None:
        raise error

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    return app


async def get(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/thing")


@pytest.mark.parametrize("error", [Missing("no such thing"), MissingVersion("no such thing")])
async def test_a_kind_and_its_subclasses_map_to_its_status(error: DomainError) -> None:
    response = await get(app_raising(error))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["detail"] == "no such thing"


async def test_an_unmapped_kind_is_a_server_error_not_a_refusal() -> None:
    assert (await get(app_raising(Unmapped("oops")))).status_code == 500
