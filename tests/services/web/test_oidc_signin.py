"""Sign-in through an identity provider: the authorization-code flow with PKCE against
a real local provider (tests/idp.py), refusing forged, replayed or foreign answers."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from idp import AUDIENCE, IdentityProvider
from llmdocs.core.config import Settings
from services.web.portal import start_portal


async def provider_and_portal(settings: Settings, serve: Any
                              ) -> tuple[IdentityProvider, Settings]:
    idp = IdentityProvider()
    idp.user_claims = {"roles": ["editor"]}
    await serve(idp.app(), port=idp.port)
    configured = settings.model_copy(update={"oidc_issuer": idp.issuer,
                                             "oidc_audience": AUDIENCE})
    return idp, await start_portal(configured, serve, ("docstore",))


async def test_sign_in_at_the_identity_provider(settings: Settings, serve: Any) -> None:
    idp, eco = await provider_and_portal(settings, serve)
    async with httpx.AsyncClient(base_url=eco.url_for("web"), timeout=30) as browser:
        login = await browser.get("/login")
        assert 'href="/login/oidc?next=/"' in login.text
        begin = await browser.get("/login/oidc", params={"next": "/?q=x"})
        assert begin.status_code == 303
        asked = parse_qs(urlsplit(begin.headers["location"]).query)
        assert begin.headers["location"].startswith(f"{idp.issuer}/protocol/auth?")
        assert asked["code_challenge_method"] == ["S256"] and asked["response_type"] == ["code"]
        assert asked["redirect_uri"] == [f"{eco.url_for('web')}/login/callback"]
        at_provider = await browser.get(begin.headers["location"])
        callback = at_provider.headers["location"]
        done = await browser.get(callback)
        assert done.status_code == 303 and done.headers["location"] == "/?q=x", done.text
        home = await browser.get("/")
        assert home.status_code == 200 and re.search(r'class="who">[^<]*alice<', home.text)
        # the same answer again: the code was used, the flow's cookie is gone
        again = await browser.get(callback)
        assert again.status_code == 400 and "sign in again" in again.text


async def test_forged_and_refused_answers_sign_no_one_in(settings: Settings,
                                                         serve: Any) -> None:
    idp, eco = await provider_and_portal(settings, serve)
    async with httpx.AsyncClient(base_url=eco.url_for("web"), timeout=30) as browser:
        begin = await browser.get("/login/oidc")
        at_provider = await browser.get(begin.headers["location"])
        answer = parse_qs(urlsplit(at_provider.headers["location"]).query)
        wrong_state = await browser.get("/login/callback", params={
            "code": answer["code"][0], "state": "forged"})
        assert wrong_state.status_code == 400 and "another sign-in" in wrong_state.text
    async with httpx.AsyncClient(base_url=eco.url_for("web"), timeout=30) as attacker:
        # a victim's callback URL opened in another browser: no flow cookie there
        stolen = await attacker.get("/login/callback", params={
            "code": answer["code"][0], "state": answer["state"][0]})
        assert stolen.status_code == 400 and "did not start in this browser" in stolen.text
        assert (await attacker.get("/")).status_code == 303
    idp.signs_in = None  # the user cancels at the provider
    async with httpx.AsyncClient(base_url=eco.url_for("web"), timeout=30) as browser:
        begin = await browser.get("/login/oidc")
        at_provider = await browser.get(begin.headers["location"])
        refused = await browser.get(at_provider.headers["location"])
        assert refused.status_code == 400 and "access_denied" in refused.text


async def test_without_a_provider_there_is_no_provider_sign_in(settings: Settings,
                                                               serve: Any) -> None:
    eco = await start_portal(settings, serve, ("docstore",))
    async with httpx.AsyncClient(base_url=eco.url_for("web"), timeout=30) as browser:
        assert "/login/oidc" not in (await browser.get("/login")).text
        assert (await browser.get("/login/oidc")).status_code == 404
