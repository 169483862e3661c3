"""Typed client of the analysis service: what other services and the CLI use to reach it."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from llmdocs.core.client import ServiceClient
from llmdocs.openapi.diff import Diff
from llmdocs.services.analysis.schemas import CheckOut, FindingOut

_findings = TypeAdapter(list[FindingOut])


class AnalysisClient(ServiceClient):
    service = "analysis"

    async def diff(self, base: dict[str, Any], head: dict[str, Any]) -> Diff:
        """Specs as the API takes them: {"document_id"}, {"url"}, {"spec"}, {"content"}."""
        return Diff.model_validate(await self.post_json("/diff", {"base": base, "head": head},
                                                        idempotent=True))

    async def check(self, document: dict[str, Any], spec: dict[str, Any]) -> CheckOut:
        """A document ({"document_id"} or {"content"}) checked against a spec."""
        return CheckOut.model_validate(await self.post_json(
            "/check", {"document": document, "spec": spec}, idempotent=True))

    async def record(self, source: str, base: dict[str, Any], head: dict[str, Any]
                     ) -> FindingOut | None:
        """A source seen to change (None: the two specs are the same); idempotent by
        source, base and head, so a retry finds the first answer's finding."""
        answer = await self.request("POST", "/findings", idempotent=True,
                                    json={"source": source, "base": base, "head": head})
        return None if answer.status_code == 204 else FindingOut.model_validate_json(
            answer.content)

    async def findings(self, document_id: str | None = None, status: str | None = "open",
                       limit: int = 50) -> list[FindingOut]:
        params = {k: v for k, v in {"document_id": document_id, "status": status,
                                    "limit": limit}.items() if v is not None}
        return _findings.validate_python(await self.get_json("/findings", params=params))

    async def finding(self, finding_id: str) -> FindingOut:
        return FindingOut.model_validate(await self.get_json(f"/findings/{finding_id}"))
