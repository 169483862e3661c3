"""HTTP routes of privacy requests (GDPR): export and erase everything llmdocs holds
about a person, across every service; the receipts of erasures. Scope privacy:admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from llmdocs.core.auth import MAX_SUBJECT, Principal, require
from llmdocs.core.client import ServiceError
from llmdocs.core.db import StorableText
from llmdocs.core.errors import PROBLEM_JSON, Problem, problem_body, unavailable
from llmdocs.core.privacy import SCOPE, Subject
from llmdocs.services.orchestrator.privacy import Incomplete, PrivacyRequests
from llmdocs.services.orchestrator.schemas import EntityId, ErasureReceipt, OwnedDocuments
from llmdocs.services.orchestrator.settings import PrivacySettings

router = APIRouter(tags=["privacy"])  # in the orchestrator's: its domain errors mapped
Admin = Annotated[Principal, Depends(require(SCOPE))]


def requests(request: Request) -> PrivacyRequests:
    found: PrivacyRequests = request.app.state.privacy_requests
    return found


Requests = Annotated[PrivacyRequests, Depends(requests)]


@router.get("/privacy/subjects/{subject:path}/export", response_class=Response,
            responses={200: {"content": {"application/zip": {}},
                             "description": "`<service>/<what>.json` and `manifest.json`"}},
            summary="Everything llmdocs holds about a person, from every service, as a ZIP")
async def export_subject(subject: Subject, caller: Admin, privacy: Requests) -> Response:
    try:
        archive = await privacy.export(subject, caller)
    except ServiceError as exc:  # the path names the person: not logged as the kernel would
        if exc.outage is None:
            raise
        raise unavailable(f"{exc.service} cannot be reached: the export would miss its "
                          "part; retry later.", exc.outage) from None
    return Response(archive, media_type="application/zip", headers={
        "Content-Disposition": 'attachment; filename="llmdocs-privacy-export.zip"'})


@router.delete("/privacy/subjects/{subject:path}", response_model=ErasureReceipt,
               responses={503: {"description": "A service is down: the receipt (in "
                                "`receipt`) is partial, and a retry completes it"}},
               summary="Erase a person everywhere: deleted, or pseudonymised where a "
               "record must stay; their documents deleted or transferred")
async def erase_subject(
    request: Request, subject: Subject, caller: Admin, privacy: Requests,
    owned_documents: OwnedDocuments | None = Query(
        None, description="default: LLMDOCS_PRIVACY_OWNED_DOCUMENTS (or transfer, when "
        "transfer_to is given)"),
    transfer_to: StorableText | None = Query(None, min_length=1, max_length=MAX_SUBJECT),
) -> Response:
    defaults: PrivacySettings = request.app.state.privacy_settings
    owned = owned_documents or ("transfer" if transfer_to else defaults.owned_documents)
    receiver = transfer_to or (defaults.transfer_to if owned == "transfer" else None)
    try:
        receipt = await privacy.erase(subject, owned, receiver, caller)
    except Incomplete as exc:
        return _incomplete(exc.receipt)
    return JSONResponse(receipt.model_dump(mode="json"),
                        headers={"Location": f"/privacy/requests/{receipt.id}"})


def _incomplete(receipt: ErasureReceipt) -> JSONResponse:
    """503 with Retry-After while a service is down (the same request again completes
    it), 502 when one refused (someone must look); the receipt goes along."""
    refused = [key for key, part in receipt.services.items() if part.status == "refused"]
    down = [key for key, part in receipt.services.items() if part.status == "unavailable"]
    problem = (Problem(502, f"{', '.join(refused)} refused the erasure; see the receipt.")
               if refused else unavailable(f"{', '.join(down)} cannot be reached: the "
                                           "erasure is partial; retry to complete it."))
    return JSONResponse({**problem_body(problem), "receipt": receipt.model_dump(mode="json")},
                        status_code=problem.status, media_type=PROBLEM_JSON,
                        headers={**problem.headers,
                                 "Location": f"/privacy/requests/{receipt.id}"})


@router.get("/privacy/requests/{request_id}", summary="An erasure's receipt")
async def get_request(request_id: Annotated[EntityId, Path()], _caller: Admin,
                      privacy: Requests) -> ErasureReceipt:
    return await privacy.get(request_id)
