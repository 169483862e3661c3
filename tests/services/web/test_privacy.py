"""The portal's part of a privacy request: a person's sessions are exported without
their cookie hashes, and an erasure signs them out everywhere. Real services over HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.privacy import pseudonym
from services.web.portal import link_for, start_portal

HELD = "/privacy/held/user%3Aalice"


async def test_an_erasure_signs_the_person_out(settings: Settings, serve: Any) -> None:
    eco = await start_portal(settings, serve, ("docstore",))
    web = eco.url_for("web")
    admin = {"Authorization": f"Bearer {issue_token(settings, 'user:root', ['*'])}"}
    async with httpx.AsyncClient(timeout=30) as alice, \
            httpx.AsyncClient(timeout=30, headers=admin) as root:
        assert (await alice.get(link_for(eco, "user:alice"))).status_code == 303
        assert (await alice.get(web + "/")).status_code == 200
        held = (await root.get(web + HELD)).json()["records"]
        (session,) = held["sessions"]
        assert "id" not in session and session["subject"] == "user:alice"

        erased = await root.delete(web + HELD, params={
            "owned_documents": "delete", "pseudonym": pseudonym(settings, "user:alice")})
        assert erased.status_code == 200, erased.text
        assert erased.json()["erased"] == {"sessions ended": 1}
        signed_out = await alice.get(web + "/")
        assert signed_out.status_code == 303 and "/login" in signed_out.headers["location"]
        assert (await root.get(web + HELD)).json()["records"] == {"sessions": []}
