"""Every page of the portal, on a 360 px phone and on a desktop: axe-core finds no
serious or critical violation, the page has a title and a main landmark, and nothing
makes it scroll sideways."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, StorageState, ViewportSize

from web.checks import assert_accessible, assert_fits
from web.conftest import DESKTOP
from web.portal import Portal

# every page of the issue; {doc} is the worked example's document
PAGES = {"search": "/?q=user", "document": "/documents/{doc}",
         "provenance": "/documents/{doc}/provenance", "ask": "/ask", "runs": "/runs",
         "services": "/services", "prompts": "/prompts", "usage": "/usage",
         "trace": "/trace"}
PHONE: ViewportSize = {"width": 360, "height": 740}


@pytest.mark.parametrize("width", [PHONE["width"], DESKTOP["width"]])
@pytest.mark.parametrize("name", list(PAGES))
def test_page_is_accessible_and_fits(portal: Portal, browser: Browser,
                                     signed_in_state: StorageState, name: str, width: int) -> None:
    viewport = PHONE if width == PHONE["width"] else DESKTOP
    context = browser.new_context(storage_state=signed_in_state, viewport=viewport)
    try:
        page = context.new_page()
        answer = page.goto(portal.web + PAGES[name].format(doc=portal.example_document))
        assert answer is not None and answer.status == 200, (name, answer and answer.status)
        page.wait_for_load_state("networkidle")
        assert not page.title().startswith("llmdocs ·"), page.title()  # a title of its own
        assert page.locator("main").count() == 1
        assert page.locator("h1").count() >= 1
        assert "Traceback" not in page.content()
        assert_accessible(page)
        assert_fits(page, width)
    finally:
        context.close()


def test_keyboard_reaches_the_content_and_the_search_box(portal: Portal, page: Page) -> None:
    page.goto(f"{portal.web}/documents/{portal.example_document}")
    page.keyboard.press("Tab")
    skip = page.evaluate("[document.activeElement.tagName, document.activeElement.hash]")
    assert skip == ["A", "#main"], skip
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.goto(portal.web + "/")
    page.locator("body").focus()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.name") == "q"
    page.keyboard.type("user")
    page.keyboard.press("Enter")
    page.wait_for_url("**/?q=user*")
