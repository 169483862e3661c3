"""One real `llmdocs up --example` (every service, the web portal, the local model) for
the session and one Chromium per test module (a live sync Playwright marks the thread's
event loop as running, which the async tests of other modules could not bear); each
test gets a fresh browser context, signed in with the session's cookie."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    StorageState,
    ViewportSize,
    sync_playwright,
)

from web.portal import Portal, start_portal

DESKTOP: ViewportSize = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """The embedded ecosystem as `make run` starts it, with its worked example done."""
    with start_portal(tmp_path_factory.mktemp("portal")) as running:
        yield running


@pytest.fixture(scope="session")
def signed_in_state(portal: Portal) -> StorageState:
    """A browser's cookies once it opened a link `llmdocs web login` printed."""
    answer = httpx.get(portal.new_login_link(), timeout=60)
    assert answer.status_code == 303 and answer.cookies, answer.text[:300]
    return {"cookies": [{"name": name, "value": value, "domain": "127.0.0.1", "path": "/",
                         "expires": -1, "httpOnly": True, "secure": False, "sameSite": "Lax"}
                        for name, value in answer.cookies.items()], "origins": []}


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium (scripts/system-deps.sh installs it), not a downloaded one."""
    chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                          args=["--no-sandbox"])
    yield chromium
    chromium.close()


@pytest.fixture
def context(browser: Browser, signed_in_state: StorageState) -> Iterator[BrowserContext]:
    """A signed-in browser context of this test's own, at desktop width."""
    ctx = browser.new_context(storage_state=signed_in_state, viewport=DESKTOP)
    ctx.set_default_timeout(30_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
