"""Typed client of the doc-store: what other services and the CLI use to reach it."""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import quote

from llmdocs.core.client import ServiceClient, idempotency_header
from llmdocs.core.spaces import Memberships, Role
from llmdocs.services.docstore.schemas import (
    BulkResult,
    DiffOut,
    DocumentCreate,
    DocumentOut,
    DocumentPage,
    DocumentSummary,
    Lineage,
    MemberList,
    MemberOut,
    MySpaces,
    ProvenanceOut,
    RelationList,
    SearchPage,
    SpaceCreate,
    SpaceList,
    SpaceOut,
    StoredDocument,
    VersionDetail,
    VersionList,
)


def _if_match(version: int | None) -> dict[str, str]:
    return {"If-Match": f'"{version}"'} if version is not None else {}


def _form(fields: dict[str, Any]) -> dict[str, str]:
    """Multipart fields: JSON for structured values, comma-joined tags."""
    form: dict[str, str] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if name == "tags":
            form[name] = ",".join(value)
        elif isinstance(value, (dict, list)):
            form[name] = json.dumps(value)
        else:
            form[name] = str(value)
    return form


class DocStoreClient(ServiceClient):
    service = "docstore"

    async def put(self, content: str, *, idempotency_key: str | None = None,
                  dedupe: bool = True, **fields: Any) -> StoredDocument:
        """Store a text document (fields as in `DocumentCreate`), retried under its
        Idempotency-Key (`idempotency_key`, or one of the call's own)."""
        # pydantic writes the JSON (the stdlib encoder costs more on a long content)
        body = DocumentCreate(content=content, **fields).model_dump_json(exclude_none=True)
        answer = await self.request("POST", "/documents", content=body.encode(), headers={
            "content-type": "application/json", **idempotency_header(idempotency_key)},
            params={"dedupe": str(dedupe).lower()}, idempotent=True)
        return StoredDocument.model_validate_json(answer.content)

    async def upload(self, data: bytes, filename: str, *, content_type: str | None = None,
                     idempotency_key: str | None = None, dedupe: bool = True, **fields: Any
                     ) -> StoredDocument:
        """Store a file (a binary artifact, or UTF-8 text for text formats), retried as
        `put` is."""
        answer = await self.request(
            "POST", "/documents", params={"dedupe": str(dedupe).lower()},
            files={"file": (filename, data, content_type or "application/octet-stream")},
            data=_form(fields), headers=idempotency_header(idempotency_key), idempotent=True)
        return StoredDocument.model_validate_json(answer.content)

    async def update(self, document_id: str, content: str | bytes, *,
                     if_version: int | None = None, idempotency_key: str | None = None,
                     filename: str = "", content_type: str | None = None,
                     **fields: Any) -> StoredDocument:
        """A new version: text, or a file (bytes, named `filename`), retried as `put` is
        (under `idempotency_key`, or one of the call's own); `if_version` makes a stale
        update fail (412)."""
        body: dict[str, Any] = {"json": {"content": content, **fields}} if isinstance(
            content, str) else {"files": {"file": (
                filename, content, content_type or "application/octet-stream")},
                                "data": _form(fields)}
        answer = await self.request("PUT", f"/documents/{document_id}", headers={
            **_if_match(if_version), **idempotency_header(idempotency_key)},
            idempotent=True, **body)
        return StoredDocument.model_validate_json(answer.content)

    async def get(self, document_id: str, version: int | None = None) -> DocumentOut:
        params = {"version": version} if version else None
        answer = await self.request("GET", f"/documents/{document_id}", params=params)
        return DocumentOut.model_validate_json(answer.content)

    async def download(self, document_id: str, version: int | None = None
                       ) -> tuple[bytes, str, str]:
        """The bytes, their media type and the file name the service suggests."""
        params = {"version": version} if version else None
        answer = await self.request("GET", f"/documents/{document_id}/download", params=params)
        disposition = answer.headers.get("content-disposition", "")
        name = disposition.split('filename="', 1)[-1].split('"', 1)[0] if disposition else ""
        return answer.content, answer.headers.get("content-type", ""), name or document_id

    async def list(self, **params: Any) -> DocumentPage:
        """Filters: source, format, tag, author, created_after/before, `metadata.<k>`,
        sort, limit, cursor."""
        clean = {k: v for k, v in params.items() if v is not None}
        answer = await self.request("GET", "/documents", params=clean)
        return DocumentPage.model_validate_json(answer.content)

    async def search(self, q: str, **params: Any) -> SearchPage:
        clean = {k: v for k, v in params.items() if v is not None}
        answer = await self.request("GET", "/search", params={"q": q, **clean})
        return SearchPage.model_validate_json(answer.content)  # parsed once, not twice

    async def versions(self, document_id: str) -> VersionList:
        answer = await self.request("GET", f"/documents/{document_id}/versions")
        return VersionList.model_validate_json(answer.content)

    async def version(self, document_id: str, version: int) -> VersionDetail:
        return VersionDetail.model_validate(
            await self.get_json(f"/documents/{document_id}/versions/{version}"))

    async def diff(self, document_id: str, old: int, new: int) -> DiffOut:
        return DiffOut.model_validate(await self.get_json(
            f"/documents/{document_id}/diff", params={"from": old, "to": new}))

    async def rollback(self, document_id: str, version: int,
                       if_version: int | None = None) -> StoredDocument:
        answer = await self.request("POST", f"/documents/{document_id}/rollback",
                                    json={"version": version}, headers=_if_match(if_version))
        return StoredDocument.model_validate_json(answer.content)

    async def patch(self, document_id: str, **change: Any) -> DocumentSummary:
        answer = await self.request("PATCH", f"/documents/{document_id}", json=change)
        return DocumentSummary.model_validate_json(answer.content)

    async def delete(self, document_id: str, hard: bool = False) -> None:
        await self.request("DELETE", f"/documents/{document_id}",
                           params={"hard": "true"} if hard else None)

    async def mark_stale(self, document_id: str, reason: str, finding_id: str,
                         version: int | None = None) -> DocumentSummary:
        """Idempotent: marking again with the same finding changes nothing."""
        body = {"reason": reason, "finding_id": finding_id, "version": version}
        answer = await self.request("POST", f"/documents/{document_id}/stale", json=body,
                                    idempotent=True)
        return DocumentSummary.model_validate_json(answer.content)

    async def provenance(self, document_id: str, version: int | None = None) -> ProvenanceOut:
        params = {"version": version} if version else None
        return ProvenanceOut.model_validate(
            await self.get_json(f"/documents/{document_id}/provenance", params=params))

    async def relations(self, document_id: str) -> RelationList:
        return RelationList.model_validate(
            await self.get_json(f"/documents/{document_id}/relations"))

    async def relate(self, document_id: str, type: str, target_id: str) -> RelationList:
        answer = await self.request("POST", f"/documents/{document_id}/relations",
                                    json={"type": type, "target_id": target_id})
        return RelationList.model_validate_json(answer.content)

    async def lineage(self, document_id: str, direction: str = "up", depth: int = 5) -> Lineage:
        return Lineage.model_validate(await self.get_json(
            f"/documents/{document_id}/lineage",
            params={"direction": direction, "depth": depth}))

    async def bulk(self, documents: Iterable[DocumentCreate | dict[str, Any]]
                   ) -> builtins.list[BulkResult]:
        """Stream documents as NDJSON; one result per line, in order."""
        async def lines() -> AsyncIterator[bytes]:
            for doc in documents:
                item = doc if isinstance(doc, DocumentCreate) else DocumentCreate(**doc)
                yield item.model_dump_json(exclude_none=True).encode() + b"\n"

        answer = await self.request("POST", "/documents/bulk", content=lines(),
                                    headers={"content-type": "application/x-ndjson"},
                                    idempotent=False)
        return [BulkResult.model_validate_json(line) for line in answer.text.splitlines()]

    async def my_spaces(self) -> Memberships:
        """The caller's memberships, space → role (`default`'s open role not included)."""
        mine = MySpaces.model_validate(await self.get_json("/spaces/mine"))
        return {entry.name: entry.role for entry in mine.spaces}

    async def spaces(self) -> SpaceList:
        """The spaces the caller sees, with their role in each."""
        return SpaceList.model_validate(await self.get_json("/spaces"))

    async def create_space(self, name: str, description: str = "") -> SpaceOut:
        return SpaceOut.model_validate(await self.post_json(
            "/spaces", SpaceCreate(name=name, description=description).model_dump()))

    async def members(self, name: str) -> MemberList:
        return MemberList.model_validate(await self.get_json(f"/spaces/{name}/members"))

    async def grant(self, name: str, subject: str, role: Role) -> MemberOut:
        """Give `subject` `role` in the space (or change the role they have)."""
        answer = await self.request("PUT", f"/spaces/{name}/members/{quote(subject, safe='')}",
                                    json={"role": role}, idempotent=True)
        return MemberOut.model_validate_json(answer.content)

    async def revoke(self, name: str, subject: str) -> None:
        await self.request("DELETE", f"/spaces/{name}/members/{quote(subject, safe='')}",
                           idempotent=True)
