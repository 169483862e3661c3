"""Privacy requests across the services: an export gathers what each one holds about a
person into one ZIP; an erasure asks each to erase, keeps a receipt of what each did,
and resumes where it stopped (a crash, a service down) until every one is done. The
calls carry the requester's on-behalf-of token: each service judges their right."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any, cast

import structlog
from fastapi.encoders import jsonable_encoder
from sqlalchemy import CursorResult, insert, select, update

from llmdocs.core.auth import Principal
from llmdocs.core.client import ServiceError, acting_for
from llmdocs.core.config import Settings
from llmdocs.core.db import Database, utcnow
from llmdocs.core.events import EventBus, make_event
from llmdocs.core.ids import new_id
from llmdocs.core.privacy import (
    EVENT_ERASED,
    Erasure,
    OwnedDocuments,
    Records,
    SubjectData,
    erasure_of,
    pseudonym,
)
from llmdocs.services.orchestrator.errors import HolderFailed, Unknown
from llmdocs.services.orchestrator.models import PrivacyRequest
from llmdocs.services.orchestrator.schemas import ErasureReceipt, ServiceErasure

log = structlog.get_logger(__name__)
UNFINISHED = ("pending", "partial")
ACTOR = "orchestrator"
RESUME_SECONDS = 30.0  # between rounds of resuming unfinished requests


def _context(request_id: str) -> str:
    return f"privacy-request:{request_id}"


class Incomplete(Exception):
    """An erasure some service could not do now (it is down): the receipt says which;
    a retry of the request completes it."""

    def __init__(self, receipt: ErasureReceipt) -> None:
        super().__init__(f"erasure {receipt.id} is partial")
        self.receipt = receipt


def receipt_of(row: PrivacyRequest) -> ErasureReceipt:
    services = {key: ServiceErasure.model_validate(part)
                for key, part in json.loads(row.services).items()}
    return ErasureReceipt(
        id=row.id, pseudonym=row.pseudonym, status=row.status,
        owned_documents=row.owned_documents,
        transfer_to=row.transfer_to, services=services,
        nothing_found=row.status == "completed" and not any(
            sum(part.erased.values()) for part in services.values()),
        created_at=row.created_at, completed_at=row.completed_at)


def _requester(principal: Principal) -> str:
    return json.dumps({"subject": principal.subject, "scopes": sorted(principal.scopes),
                       "roles": sorted(principal.roles)})


def _principal(requester: str) -> Principal:
    found = json.loads(requester)
    return Principal(subject=found["subject"], scopes=frozenset(found["scopes"]),
                     roles=frozenset(found["roles"]))


class PrivacyRequests:
    """Exports and erasures over `holders` (service key → its `SubjectData`: this
    service's own, the others' through their clients), in their order."""

    def __init__(self, settings: Settings, database: Database, events: EventBus,
                 holders: Mapping[str, SubjectData]) -> None:
        self.settings = settings
        self.database = database
        self.events = events
        self.holders = dict(holders)

    # --- export -----------------------------------------------------------------------

    async def export(self, subject: str, caller: Principal) -> bytes:
        """A ZIP of `<service>/<what>.json` per service and `manifest.json`; a service
        that is down fails the export (an export missing a part would look complete)."""
        with acting_for(self.settings, ACTOR, caller):
            parts = await asyncio.gather(*(self._held(key, holder, subject)
                                           for key, holder in self.holders.items()))
        buffer = io.BytesIO()
        manifest: dict[str, Any] = {"subject": subject,
                                    "pseudonym": pseudonym(self.settings, subject),
                                    "exported_at": utcnow().isoformat(), "services": {}}
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for key, records in zip(self.holders, parts, strict=True):
                counts = {stem: len(rows) for stem, rows in records.items()}
                manifest["services"][key] = counts
                for stem, rows in records.items():
                    archive.writestr(f"{key}/{stem}.json", json.dumps(rows, indent=1))
            total = sum(sum(c.values()) for c in manifest["services"].values())
            manifest["records"] = total
            manifest["found"] = total > 0
            if not total:
                manifest["note"] = "llmdocs holds nothing about this subject."
            archive.writestr("manifest.json", json.dumps(manifest, indent=1))
        return buffer.getvalue()

    async def _held(self, key: str, holder: SubjectData, subject: str) -> Records:
        try:  # this service's own records as JSON has them: times as RFC 3339
            return cast(Records, jsonable_encoder(await holder.export(subject)))
        except ServiceError as exc:
            if exc.outage is not None:
                raise
            raise HolderFailed(f"{key} refused the export: {exc}") from exc

    # --- erasure ----------------------------------------------------------------------

    async def erase(self, subject: str, owned_documents: OwnedDocuments,
                    transfer_to: str | None, caller: Principal) -> ErasureReceipt:
        """Erase everywhere: a request left unfinished for this subject goes on (with
        its own terms), else a new one starts. `Incomplete` when a service is down."""
        erasure = erasure_of(self.settings, subject, owned_documents, transfer_to)
        row = await self._unfinished(erasure.pseudonym) or await self._create(erasure, caller)
        return await self._carry_out(row, subject)

    async def _unfinished(self, pseudonym_: str) -> PrivacyRequest | None:
        async with self.database.session() as session:
            return (await session.execute(
                select(PrivacyRequest).where(PrivacyRequest.pseudonym == pseudonym_,
                                             PrivacyRequest.status.in_(UNFINISHED))
                .order_by(PrivacyRequest.created_at).limit(1))).scalar_one_or_none()

    async def _create(self, erasure: Erasure, caller: Principal) -> PrivacyRequest:
        request_id = new_id()
        values = {
            "id": request_id, "pseudonym": erasure.pseudonym, "status": "pending",
            "subject_sealed": self.settings.secrets_ring.seal_text(
                erasure.subject, _context(request_id)),
            "owned_documents": erasure.owned_documents, "transfer_to": erasure.transfer_to,
            "requester": _requester(caller),
            "services": json.dumps({key: {"status": "pending"} for key in self.holders}),
            "created_at": utcnow(), "completed_at": None}
        async with self.database.transaction() as session:
            await session.execute(insert(PrivacyRequest), values)
        return PrivacyRequest(**values)

    async def _carry_out(self, row: PrivacyRequest, subject: str) -> ErasureReceipt:
        erasure = Erasure(subject=subject, pseudonym=row.pseudonym,
                          owned_documents=row.owned_documents,  # type: ignore[arg-type]
                          transfer_to=row.transfer_to)
        parts: dict[str, dict[str, Any]] = json.loads(row.services)
        for key in self.holders:  # a service added since the request began is asked too
            parts.setdefault(key, {"status": "pending"})
        with acting_for(self.settings, ACTOR, _principal(row.requester)):
            for key, holder in self.holders.items():
                if parts[key]["status"] == "done":
                    continue
                parts[key] = await self._erase_at(key, holder, erasure)
                await self._save(row.id, parts)  # a crash after it resumes with the next
        return await self._conclude(row, parts)

    async def _erase_at(self, key: str, holder: SubjectData, erasure: Erasure
                        ) -> dict[str, Any]:
        try:
            erased = await holder.erase(erasure)
        except ServiceError as exc:
            status = "unavailable" if exc.outage is not None else "refused"
            log.warning("privacy_erasure_incomplete", service=key, status=status,
                        error=str(exc)[:300])
            return {"status": status, "error": str(exc)[:500]}
        return {"status": "done", "erased": erased}

    async def _save(self, request_id: str, parts: dict[str, dict[str, Any]]) -> None:
        async with self.database.transaction() as session:
            await session.execute(update(PrivacyRequest).where(
                PrivacyRequest.id == request_id).values(services=json.dumps(parts)))

    async def _conclude(self, row: PrivacyRequest, parts: dict[str, dict[str, Any]]
                        ) -> ErasureReceipt:
        """Completed when every service is done: the subject is forgotten and the
        erasure announced (by pseudonym) in the same transaction; else partial."""
        done = all(part["status"] == "done" for part in parts.values())
        values: dict[str, Any] = {"services": json.dumps(parts)}
        values |= ({"status": "completed", "completed_at": utcnow(), "subject_sealed": None}
                   if done else {"status": "partial"})
        async with self.events.transaction(self.database) as (conn, outbox):
            changed = cast(CursorResult[Any], await conn.execute(
                update(PrivacyRequest).where(PrivacyRequest.id == row.id,
                                             PrivacyRequest.status.in_(UNFINISHED))
                .values(**values)))
            if done and changed.rowcount:  # announced once, by whoever completed it
                outbox.append(make_event(ACTOR, EVENT_ERASED, {
                    "pseudonym": row.pseudonym, "request_id": row.id,
                    "erased": {key: part.get("erased", {}) for key, part in parts.items()}},
                    subject=row.id))
        receipt = await self.get(row.id)
        if receipt.status != "completed":
            raise Incomplete(receipt)
        return receipt

    async def get(self, request_id: str) -> ErasureReceipt:
        async with self.database.session() as session:
            row = await session.get(PrivacyRequest, request_id)
        if row is None:
            raise Unknown(f"No privacy request {request_id!r}.")
        return receipt_of(row)

    async def keep_resuming(self, interval: float = RESUME_SECONDS) -> None:
        """Resume unfinished requests at start-up, then every `interval` while any is
        left (a service still down, or not started yet)."""
        while True:
            try:
                if not await self.resume_unfinished():
                    return
            except Exception:  # a database hiccup: the next round tries again
                log.exception("privacy_resume_failed")
            await asyncio.sleep(interval)

    async def resume_unfinished(self) -> int:
        """Carry on with every request a crash or an outage left unfinished, with the
        rights of who asked; how many are still unfinished."""
        async with self.database.session() as session:
            rows = list((await session.execute(select(PrivacyRequest).where(
                PrivacyRequest.status.in_(UNFINISHED),
                PrivacyRequest.subject_sealed.is_not(None)))).scalars())
        left = 0
        for row in rows:
            subject = self.settings.secrets_ring.open_text(
                cast(str, row.subject_sealed), _context(row.id))
            try:
                await self._carry_out(row, subject)
            except Incomplete:
                left += 1
                log.info("privacy_request_still_partial", request_id=row.id)
        return left
