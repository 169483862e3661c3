"""Signing in to the portal and staying safe while in: a one-time link, a pasted token,
cookies scripts cannot read, CSRF tokens on every form, a strict CSP, and signing out
that ends the session on the server. Real services over HTTP."""

from __future__ import annotations

import asyncio
import re
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from llmdocs.cli import app
from llmdocs.core.auth import issue_token, service_token
from llmdocs.core.config import Settings
from llmdocs.devservers import free_port
from llmdocs.runtime import Server, server_config
from llmdocs.services import create_app
from llmdocs.services.web.sessions import sign_in_link
from llmdocs.services.web.settings import WebSettings
from services.web.portal import csrf_of, link_for, signed_in, start_portal

ONLY_DOCSTORE = ("docstore",)


def token_in(link: str) -> str:
    return link.split("?token=", 1)[1]


def cookie_flags(answer: httpx.Response, name: str) -> str:
    found = [v for v in answer.headers.get_list("set-cookie") if v.startswith(f"{name}=")]
    assert found, f"no {name} cookie in {answer.headers.get_list('set-cookie')}"
    return found[0].lower()


async def test_a_sign_in_link_signs_in_once(settings: Settings, serve: Any) -> None:
    eco = await start_portal(settings, serve, ONLY_DOCSTORE)
    link = link_for(eco, "user:alice")
    assert re.fullmatch(rf"http://127\.0\.0\.1:{eco.web_port}/login\?token=[\w.-]+", link)
    async with httpx.AsyncClient(timeout=30) as browser:
        first = await browser.get(link + "&next=/documents/x")
        assert first.status_code == 303 and first.headers["location"] == "/documents/x"
        flags = cookie_flags(first, "llmdocs_session")
        assert "httponly" in flags and "samesite=lax" in flags
        assert "secure" not in flags  # plain HTTP here: a Secure cookie would never return
        home = await browser.get(eco.url_for("web") + "/")
        assert home.status_code == 200 and "user:alice" in home.text
    async with httpx.AsyncClient(timeout=30) as other:
        again = await other.get(link)
        assert again.status_code == 400 and "used already" in again.text
        assert "llmdocs_session" not in again.headers.get("set-cookie", "")
        assert (await other.get(eco.url_for("web") + "/")).status_code == 303


async def test_a_late_or_foreign_link_signs_no_one_in(settings: Settings, serve: Any) -> None:
    eco = await start_portal(settings, serve, ONLY_DOCSTORE)
    late = token_in(sign_in_link(eco, WebSettings(link_minutes=1e-6), "user:alice"))
    other = token_in(sign_in_link(Settings(data_dir=eco.data_dir,
                                           jwt_secret=SecretStr("another-" + "y" * 40)),
                                  WebSettings(), "user:alice"))
    api_token = issue_token(eco, "user:alice", ["*"])  # an access token is no link
    async with httpx.AsyncClient(base_url=eco.url_for("web"), timeout=30) as browser:
        for token, why in ((late, "expired"), (other, "not valid"), (api_token, "not valid")):
            answer = await browser.get("/login", params={"token": token})
            assert answer.status_code == 400 and why in answer.text, answer.text
            assert "Traceback" not in answer.text


async def test_signed_out_pages_ask_to_sign_in(settings: Settings, serve: Any) -> None:
    eco = await start_portal(settings, serve, ONLY_DOCSTORE)
    async with httpx.AsyncClient(base_url=eco.url_for("web"), timeout=30) as browser:
        answer = await browser.get("/documents/abc?version=2")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=%2Fdocuments%2Fabc%3Fversion%3D2"
        browser.cookies.set("llmdocs_session", "made-up")
        assert (await browser.get("/")).status_code == 303
        browser.cookies.clear()
        login = await browser.get("/login")
        assert login.status_code == 200 and "<title>Sign in · llmdocs</title>" in login.text


async def test_a_pasted_token_signs_in_and_a_service_token_does_not(
        settings: Settings, serve: Any) -> None:
    eco = await start_portal(settings, serve, ONLY_DOCSTORE)
    async with httpx.AsyncClient(base_url=eco.url_for("web"), timeout=30) as browser:
        csrf = csrf_of((await browser.get("/login")).text)
        refused = await browser.post("/login", data={
            "csrf_token": csrf, "access_token": service_token(eco, "docstore")})
        assert refused.status_code == 400 and "service" in refused.text
        bad = await browser.post("/login", data={"csrf_token": csrf,
                                                 "access_token": "not.a.jwt"})
        assert bad.status_code == 400 and "malformed" in bad.text
        answer = await browser.post("/login", data={
            "csrf_token": csrf, "access_token": issue_token(eco, "user:bob", [],
                                                            roles=["viewer"]),
            "next": "https://elsewhere.example/"})
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        home = await browser.get("/")
        assert home.status_code == 200 and "user:bob" in home.text


async def test_posts_without_the_csrf_token_are_refused(settings: Settings,
                                                        serve: Any) -> None:
    eco = await start_portal(settings, serve, ONLY_DOCSTORE)
    async with signed_in(eco) as browser:
        page = (await browser.get("/")).text
        token = csrf_of(page)
        for data, headers in (({}, {}), ({"csrf_token": "0" * 64}, {}),
                              ({}, {"X-CSRF-Token": "f" * 64})):
            refused = await browser.post("/logout", data=data, headers=headers)
            assert refused.status_code == 403, refused.text
            assert "did not come from this site" in refused.text
        # the right token from another browser (without its cookie) is refused too
        async with httpx.AsyncClient(base_url=eco.url_for("web"),
                                     cookies={"llmdocs_session":
                                              browser.cookies["llmdocs_session"]}) as thief:
            assert (await thief.post("/logout", data={"csrf_token": token})).status_code == 403
        assert (await browser.get("/")).status_code == 200  # still signed in
        out = await browser.post("/logout", headers={"X-CSRF-Token": token})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert (await browser.get("/")).status_code == 303


async def test_the_session_ends_on_the_server_at_sign_out(settings: Settings,
                                                          serve: Any) -> None:
    eco = await start_portal(settings, serve, ONLY_DOCSTORE)
    async with signed_in(eco) as browser:
        cookie = browser.cookies["llmdocs_session"]
        await browser.post("/logout", data={"csrf_token": csrf_of((await browser.get("/")).text)})
    async with httpx.AsyncClient(base_url=eco.url_for("web"),
                                 cookies={"llmdocs_session": cookie}) as replay:
        assert (await replay.get("/")).status_code == 303  # a kept cookie is worth nothing


async def test_every_page_carries_a_strict_csp_and_no_inline_code(settings: Settings,
                                                                  serve: Any) -> None:
    eco = await start_portal(settings, serve, ONLY_DOCSTORE)
    async with signed_in(eco) as browser:
        for path, status in (("/", 200), ("/login", 200), ("/no/such/page", 404),
                             ("/documents/0190c0de-0000-7000-8000-000000000000", 404)):
            answer = await browser.get(path)
            assert answer.status_code == status, (path, answer.text)
            csp = answer.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "script-src 'self'" in csp
            assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
            assert answer.headers["x-content-type-options"] == "nosniff"
            # every script is a file of ours; no style attribute or element anywhere
            scripts = re.findall(r"<script([^>]*)>", answer.text)
            assert scripts and all('src="/static/' in s for s in scripts)
            assert "style=" not in answer.text and "<style" not in answer.text
        csrf = cookie_flags(await browser.get("/"), "llmdocs_csrf") if \
            "llmdocs_csrf" not in browser.cookies else None
        assert csrf is None or "httponly" in csrf
        static = await browser.get("/static/htmx.min.js")
        assert static.status_code == 200 and "htmx" in static.text
        assert (await browser.get("/static/%2e%2e/api.py")).status_code == 404


async def test_llmdocs_web_login_prints_a_link_that_signs_in(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await start_portal(settings, serve, ONLY_DOCSTORE)
    monkeypatch.setenv("LLMDOCS_DATA_DIR", str(eco.data_dir))
    monkeypatch.setenv("LLMDOCS_JWT_SECRET", eco.signing_key)
    monkeypatch.setenv("LLMDOCS_WEB_PORT", str(eco.web_port))
    printed = await asyncio.to_thread(CliRunner().invoke, app, [
        "web", "login", "--sub", "user:carol", "--role", "viewer"])
    assert printed.exit_code == 0, printed.output
    link = printed.output.replace("\n", "").strip()
    assert re.fullmatch(rf"http://127\.0\.0\.1:{eco.web_port}/login\?token=[\w.-]+", link)
    async with httpx.AsyncClient(timeout=30) as browser:
        assert (await browser.get(link)).status_code == 303
        home = await browser.get(eco.url_for("web") + "/")
        assert home.status_code == 200 and "user:carol" in home.text


async def test_cookies_are_secure_when_the_portal_serves_https(settings: Settings,
                                                               tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    made = CliRunner().invoke(app, ["certs", "init", "--dir", str(certs)])
    assert made.exit_code == 0, made.output
    tls = settings.model_copy(update={"tls_dir": certs, "web_port": free_port()})
    server = Server(server_config(create_app("web", tls), "127.0.0.1", tls.web_port, tls,
                                  "web"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), task.result()
            await asyncio.sleep(0.01)
        # a browser: it trusts the CA but has no client certificate to present
        ctx = ssl.create_default_context(cafile=certs / "ca.pem")
        link = link_for(tls)
        assert link.startswith(f"https://127.0.0.1:{tls.web_port}/login?token=")
        async with httpx.AsyncClient(verify=ctx, timeout=30) as browser:
            answer = await browser.get(link)
        assert answer.status_code == 303
        flags = cookie_flags(answer, "llmdocs_session")
        assert "secure" in flags and "httponly" in flags and "samesite=lax" in flags
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
