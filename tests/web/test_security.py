"""The portal's defences, in the browser and on the wire: a hostile document runs
nothing, a POST without its CSRF token is refused, the session cookie cannot be read by
script or sent cross-site, and every page carries a strict Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import Morsel, SimpleCookie

import httpx
from playwright.sync_api import Page

from web.portal import Portal

PWNED = "__pwned"
HOSTILE = f"""# Release notes

<script>window.{PWNED} = "script";</script>

<img src="missing.png" onerror="window.{PWNED} = 'onerror'">

<svg onload="window.{PWNED} = 'svg'"><circle r="4"/></svg>

[a harmless-looking link](javascript:window.{PWNED}='link')

<a href="javascript:window.{PWNED}='anchor'" onclick="window.{PWNED}='onclick'">raw</a>

<iframe src="javascript:parent.{PWNED}='iframe'"></iframe>

<form action="javascript:window.{PWNED}='form'"><button formaction="x">go</button></form>

Plain text after them stays.
"""


@contextmanager
def signed_in(portal: Portal) -> Iterator[httpx.Client]:
    """A client holding a portal session, as a browser after following the link."""
    with httpx.Client(base_url=portal.web, timeout=60) as client:
        answer = client.get(portal.link(), follow_redirects=True)
        assert answer.status_code == 200 and client.cookies, answer.text[:500]
        yield client


def test_script_in_a_document_is_not_in_the_page_and_never_runs(
        portal: Portal, page: Page) -> None:
    document = portal.store(HOSTILE, title="Hostile release notes")
    answer = page.goto(f"{portal.web}/documents/{document}")
    assert answer is not None and answer.status == 200
    page.wait_for_load_state("load")
    main = page.locator("main")
    assert "Plain text after them stays." in main.inner_text()  # the document was rendered
    found = page.evaluate(f"""() => {{
        const main = document.querySelector("main");
        const all = [...main.querySelectorAll("*")];
        return {{
            pwned: window.{PWNED} ?? null,
            scripts: [...document.querySelectorAll("script")]
                .filter(s => !s.src || s.textContent.includes("{PWNED}")).length,
            handlers: all.flatMap(e => [...e.attributes].map(a => a.name))
                .filter(n => n.startsWith("on")),
            javascriptUrls: all.flatMap(e => [...e.attributes])
                .filter(a => /^\\s*javascript:/i.test(a.value)).map(a => a.value),
            frames: main.querySelectorAll("iframe, object, embed, svg[onload]").length,
        }};
    }}""")
    assert found == {"pwned": None, "scripts": 0, "handlers": [], "javascriptUrls": [],
                     "frames": 0}, found
    for link in main.locator("a").all():  # clicking what is left of the links runs nothing
        if link.is_visible() and (link.get_attribute("href") or "").strip() == "":
            link.click()
    assert page.evaluate(f"window.{PWNED} ?? null") is None


def test_a_post_without_its_csrf_token_is_refused(portal: Portal) -> None:
    with signed_in(portal) as client:
        for path, form in (("/logout", {}), ("/ask/run", {"query": "Document the user service",
                                                       "format": "markdown"})):
            refused = client.post(path, data=form)
            assert refused.status_code == 403, (path, refused.status_code, refused.text[:300])
            assert "Traceback" not in refused.text
            forged = client.post(path, data={**form, "csrf_token": "forged"})
            assert forged.status_code == 403, (path, forged.status_code)
        still = client.get("/")  # the refused sign-out left the session alone
        assert still.status_code == 200 and 'name="q"' in still.text


def cookies_of(answer: httpx.Response) -> dict[str, Morsel[str]]:
    jar: SimpleCookie = SimpleCookie()
    for header in answer.headers.get_list("set-cookie"):
        jar.load(header)
    return dict(jar)


def test_the_session_cookie_is_http_only_same_site_lax_and_secure_on_https(
        portal: Portal) -> None:
    https = {"X-Forwarded-Proto": "https"}  # a TLS proxy on this host, trusted by uvicorn
    answers = [(httpx.get(portal.link()), "llmdocs_session", ""),
               (httpx.get(portal.link(), headers=https), "llmdocs_session", True),
               (httpx.get(f"{portal.web}/login"), "llmdocs_csrf", ""),  # its form's
               (httpx.get(f"{portal.web}/login", headers=https), "llmdocs_csrf", True)]
    for answer, cookie, secure in answers:
        cookies = cookies_of(answer)
        assert cookie in cookies, (answer.status_code, answer.headers)
        for name, morsel in cookies.items():
            assert morsel["httponly"] is True, (name, morsel)
            assert str(morsel["samesite"]).lower() == "lax", (name, morsel)
            assert morsel["secure"] == secure, (name, morsel)  # plain HTTP: never sent else
            assert morsel["path"] == "/", (name, morsel)


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        if name:
            parsed[name.lower()] = values
    return parsed


def test_every_page_carries_a_strict_content_security_policy(portal: Portal) -> None:
    with signed_in(portal) as client:
        for path in ("/", f"/documents/{portal.example_document}",
                     f"/documents/{portal.example_document}/provenance", "/ask",
                     "/documents/no-such-document", "/login"):
            answer = client.get(path)
            policy = answer.headers.get("content-security-policy")
            assert policy, (path, answer.status_code, dict(answer.headers))
            found = directives(policy)
            scripts = found.get("script-src", found.get("default-src"))
            assert scripts is not None, policy
            assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:",
                        "https:"} & set(scripts), policy
            assert found.get("object-src", found.get("default-src")) in (["'none'"],
                                                                         ["'self'"]), policy
            assert found.get("frame-ancestors") in (["'none'"], ["'self'"]), policy
            assert "<script>" not in answer.text and "<script >" not in answer.text
