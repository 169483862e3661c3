"""A user signed in through the identity provider asks for a document: the interpreter,
the orchestrator and the doc-store each act for that user with on-behalf-of tokens
llmdocs signs from the provider's verified identity (its subject and the scopes its
roles grant), over real HTTP, against a local identity provider (tests/idp.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ecosystem import store_spec
from idp import AUDIENCE, IdentityProvider
from llmdocs.core.config import Settings
from services.interpreter.test_interpreter_input import QUERY, fake_eco


async def test_a_provider_signed_user_fans_out_as_themselves(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    idp = IdentityProvider()
    await serve(idp.app(), port=idp.port)
    eco = await fake_eco(settings.model_copy(update={
        "oidc_issuer": idp.issuer, "oidc_audience": AUDIENCE}), serve, monkeypatch)
    await store_spec(eco)

    def user(sub: str, *roles: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=eco.url_for("interpreter"), timeout=120, headers={
            "Authorization": f"Bearer {idp.sign(sub, roles=list(roles))}"})

    async with user("alice", "editor") as alice, user("vic", "viewer") as vic:
        asked = await alice.post("/execute-query", json={"query": QUERY})
        assert asked.status_code == 200, asked.text
        answer = asked.json()
        provenance = (await alice.get(answer["provenance_url"])).json()
        assert provenance["user_context"]["user_id"] == "oidc:alice"
        listed = await alice.post("/execute-query", json={"query": "list all documents"})
        assert listed.status_code == 200, listed.text
        assert answer["document_id"] in {d["document_id"] for d in listed.json()["documents"]}
        # a viewer reads but may not start a run: the interpreter says so before any hop
        refused = await vic.post("/execute-query", json={"query": QUERY})
        assert refused.status_code == 403 and "queries:write" in refused.json()["detail"]
        download = await vic.get(f"/documents/{answer['document_id']}/download")
        assert download.status_code == 200, download.text
