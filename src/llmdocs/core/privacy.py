"""Privacy requests (GDPR): what each service holds about a person, to export and to
erase; the kernel's `/privacy/held/{subject}` routes, and the keyed pseudonym every
service puts where a record must stay but the identity must go."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol, cast
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from sqlalchemy import CursorResult, Text, delete
from sqlalchemy import cast as sa_cast
from sqlalchemy import inspect as sa_inspect

from llmdocs.core.auth import MAX_SUBJECT, Principal, require
from llmdocs.core.client import ServiceClient
from llmdocs.core.config import Settings
from llmdocs.core.db import Database, StorableText
from llmdocs.core.errors import Problem
from llmdocs.core.idempotency import KeyRecord
from llmdocs.core.scrub import scrub_after_erasure

Records = dict[str, list[dict[str, Any]]]  # file stem in the ZIP ("documents") -> rows
OwnedDocuments = Literal["delete", "transfer"]
SCOPE = "privacy:admin"  # the `admin` role's `*` grants it
EVENT_ERASED = "llmdocs.subject.erased"  # data: the pseudonym and the request's id only
PSEUDONYM = re.compile(r"^pseudonym:[0-9a-f]{16}$")
# whom a request is about: a token's subject, as every service stores it as an owner
Subject = Annotated[StorableText, Path(min_length=1, max_length=MAX_SUBJECT,
                                       description="A token's subject: user:alice")]


@dataclass(frozen=True)
class Erasure:
    """One erasure as every service carries it out."""

    subject: str  # who is erased: "alice", "oidc:123"
    pseudonym: str  # `pseudonym(settings, subject)`: the same value in every service
    owned_documents: OwnedDocuments
    transfer_to: str | None  # who receives owned documents when "transfer"


class SubjectData(Protocol):
    """What one service holds about a person, to export and to erase."""

    async def export(self, subject: str) -> Records: ...

    async def erase(self, erasure: Erasure) -> dict[str, int]:
        """What was erased, as "what" → count ({"executions deleted": 3}); erasing
        again finds nothing and answers zeros (or nothing)."""
        ...


PrivacyFactory = Callable[[FastAPI], SubjectData]


@functools.lru_cache(maxsize=4)
def _pseudonym_key(signing_key: str) -> bytes:
    """Derived once per secret: the log-collector pseudonymises every audit record's actor."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"llmdocs pseudonym v1").derive(signing_key.encode())


def pseudonym(settings: Settings, subject: str) -> str:
    """A stable keyed pseudonym of `subject`, the same in every service (the key is
    derived from the JWT secret they share, not from the encryption ring, which rotates);
    without the secret nobody can tell whose it is, nor test a guess."""
    digest = hmac.new(_pseudonym_key(settings.signing_key), subject.encode(), hashlib.sha256)
    return f"pseudonym:{digest.hexdigest()[:16]}"


def subject_data(app: FastAPI) -> SubjectData:
    """The app's `SubjectData`, built once on first use: by then the service's own
    lifespan has made what it needs (a checkpointer, a blob store)."""
    found: SubjectData | None = getattr(app.state, "subject_data", None)
    if found is None:
        factory: PrivacyFactory | None = app.state.spec.privacy
        if factory is None:
            raise LookupError(f"{app.state.spec.key} keeps nothing about people")
        found = app.state.subject_data = factory(app)
    return found


def erasure_of(settings: Settings, subject: str, owned_documents: OwnedDocuments,
               transfer_to: str | None, given_pseudonym: str | None = None) -> Erasure:
    """An erasure checked: a transfer names who receives; a pseudonym sent along must be
    the one this deployment's key makes (a stranger's would break the audit's link)."""
    if owned_documents == "transfer" and not transfer_to:
        raise Problem(422, "Transferring owned documents needs transfer_to: who receives them.",
                      errors=[{"field": "transfer_to", "message": "required for transfer"}])
    if transfer_to is not None and transfer_to == subject:
        raise Problem(422, "Owned documents cannot be transferred to the subject erased.",
                      errors=[{"field": "transfer_to", "message": "is the subject itself"}])
    own = pseudonym(settings, subject)
    if given_pseudonym is not None and given_pseudonym != own:
        raise Problem(422, "The pseudonym is not the one this deployment's key makes for "
                      "the subject: are both services configured with the same JWT secret?",
                      errors=[{"field": "pseudonym", "message": "does not match"}])
    return Erasure(subject=subject, pseudonym=own, owned_documents=owned_documents,
                   transfer_to=transfer_to if owned_documents == "transfer" else None)


def as_record(row: Any, json_columns: Iterable[str] = ()) -> dict[str, Any]:
    """A mapped row's columns for an export (sealed ones as they read: opened), the
    JSON its text columns hold parsed."""
    record = {column.key: getattr(row, column.key)
              for column in sa_inspect(type(row)).column_attrs}
    for name in json_columns:
        if isinstance(record.get(name), str):
            record[name] = json.loads(record[name])
    return record


def rowcount(result: Any) -> int:
    """How many rows an UPDATE or DELETE touched."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


async def forget_keys(database: Database, model: type[KeyRecord], subject: str) -> int:
    """Delete the subject's idempotency keys: a kept answer holds what the request
    carried (a query, a prompt); so does one a service kept acting for them, whose
    answer names them."""
    naming = sa_cast(model.response, Text).contains(subject, autoescape=True)
    async with database.transaction() as session:
        return rowcount(await session.execute(delete(model).where(
            (model.principal == subject) | naming)))


def held_router(key: str) -> APIRouter:
    """The routes every service with a `privacy` gets, for the orchestrator's fan-out."""
    router = APIRouter(tags=["privacy"])

    @router.get("/privacy/held/{subject:path}",
                summary="Everything this service holds about a person")
    async def held(request: Request, subject: Subject,
                   _caller: Principal = Depends(require(SCOPE))) -> dict[str, Any]:
        records = await subject_data(request.app).export(subject)
        return {"service": key, "records": jsonable_encoder(records)}

    @router.delete("/privacy/held/{subject:path}",
                   summary="Erase (or pseudonymise) what this service holds about a person")
    async def erase(
        request: Request, subject: Subject,
        owned_documents: OwnedDocuments = Query("delete"),
        transfer_to: StorableText | None = Query(None, min_length=1, max_length=MAX_SUBJECT),
        pseudonym: str | None = Query(None, pattern=PSEUDONYM.pattern),
        _caller: Principal = Depends(require(SCOPE)),
    ) -> dict[str, Any]:
        erasure = erasure_of(request.app.state.settings, subject, owned_documents,
                             transfer_to, pseudonym)
        erased = await subject_data(request.app).erase(erasure)
        # what the files still kept of it (core.scrub): reported apart, not erased data
        scrubbed = await scrub_after_erasure(request.app)
        return {"service": key, "erased": erased, "scrubbed": scrubbed}

    return router


class PrivacyClient:
    """The `/privacy/held` routes of any service, through that service's client (which
    carries the caller's on-behalf-of token inside `acting_for`)."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    @staticmethod
    def _path(subject: str) -> str:
        return f"/privacy/held/{quote(subject, safe='')}"

    async def export(self, subject: str) -> Records:
        body = await self.client.get_json(self._path(subject))
        records: Records = body["records"]
        return records

    async def erase(self, erasure: Erasure) -> dict[str, int]:
        params = {"owned_documents": erasure.owned_documents, "pseudonym": erasure.pseudonym,
                  **({"transfer_to": erasure.transfer_to} if erasure.transfer_to else {})}
        response = await self.client.request("DELETE", self._path(erasure.subject),
                                             params=params)
        erased: dict[str, int] = response.json()["erased"]
        return erased
