"""Domain errors become problems in one place, each with the status of its kind; a
dependency's outage is a 503 or 504 with Retry-After, a bug a 500."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from asyncpg.exceptions import CannotConnectNowError
from fastapi import APIRouter, Depends, FastAPI
from redis import exceptions as redis_errors
from sqlalchemy import exc as sql_errors

from llmdocs.core.client import NotFound, ServiceError, ServiceUnavailable, UpstreamError
from llmdocs.core.errors import (
    PROBLEM_JSON,
    DomainError,
    domain_problems,
    install_error_handlers,
    unhandled,
)


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


def app_failing(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/thing")
    async def thing() -> None:
        raise error

    return app


@pytest.mark.parametrize(("error", "status"), [
    (redis_errors.ConnectionError("Connection refused"), 503),
    (redis_errors.TimeoutError("Timeout reading from socket"), 504),
    (ConnectionRefusedError(111, "Connect call failed"), 503),
    (sql_errors.OperationalError("SELECT 1", {}, Exception("database is locked")), 503),
    (sql_errors.TimeoutError("QueuePool limit reached"), 503),
    # PostgreSQL recovering after a crash, as asyncpg and the checkpointer's psycopg say it
    (sql_errors.DBAPIError("SELECT 1", {}, CannotConnectNowError(
        "the database system is not yet accepting connections")), 503),
    (psycopg.OperationalError("server closed the connection unexpectedly"), 503),
    (UpstreamError("docstore", 500, {"detail": "crashed"}), 503),
    (ServiceUnavailable("docstore", 504, {"detail": "timed out"}), 504),
    (sql_errors.IntegrityError("INSERT", {}, Exception("duplicate key")), 500),
    (NotFound("docstore", 404, {"detail": "a bug: unhandled"}), 500),
])
async def test_an_outage_is_503_or_504_with_retry_after_and_a_bug_500(
        error: Exception, status: int) -> None:
    app = app_failing(error)
    app.add_exception_handler(ServiceError, unhandled)  # as create_service_app does
    response = await get(app)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert ("retry-after" in response.headers) == (status != 500)
