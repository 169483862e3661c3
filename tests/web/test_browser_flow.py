"""A reader's day in the portal, in real Chromium against `llmdocs up` with the local
model: sign in with the printed link, search, read a document and its provenance, ask
for a new document and watch its steps arrive, compare two versions, meet a 404 for
another space's document, sign out."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Browser, Page, ViewportSize, expect

from llmdocs.examples import user_service_spec
from web.portal import Portal

DOCS = Path(__file__).resolve().parents[2] / "docs"
SHOT: ViewportSize = {"width": 1200, "height": 900}
RUN_GUARD = 600.0  # a hang guard for a run of the local model, not a bound


def test_the_printed_link_signs_in_once_and_sign_out_ends_the_session(
        portal: Portal, browser: Browser) -> None:
    assert portal.login_link.startswith(f"{portal.web}/login?token=")
    first = browser.new_context()
    try:
        page = first.new_page()
        page.goto(portal.login_link)
        expect(page).to_have_url(f"{portal.web}/")
        expect(page.locator("input[name=q]")).to_be_visible()
        session = next(c for c in first.cookies() if c["name"] == "llmdocs_session")
        assert session["httpOnly"] and session["sameSite"] == "Lax"

        again = browser.new_context()  # the same link, in another browser: used already
        other = again.new_page()
        refused = other.goto(portal.login_link)
        assert refused is not None and refused.status == 400
        expect(other.locator("main")).to_contain_text("used already")
        assert not any(c["name"] == "llmdocs_session" for c in again.cookies())
        again.close()

        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/login"))
        page.goto(f"{portal.web}/?q=user")
        expect(page).to_have_url(re.compile(r"/login\?next=%2F%3Fq%3Duser"))  # it is gone
    finally:
        first.close()


def test_search_opens_a_document_and_its_provenance(portal: Portal, page: Page) -> None:
    page.goto(portal.web + "/")
    page.fill("input[name=q]", "user service")
    page.keyboard.press("Enter")
    hit = page.locator(f"a[href='/documents/{portal.example_document}']").first
    expect(hit).to_be_visible()
    expect(page.locator("main mark").first).to_be_visible()  # a highlighted snippet
    hit.click()
    expect(page).to_have_url(f"{portal.web}/documents/{portal.example_document}")
    main = page.locator("main")
    expect(main.locator("h1").first).to_be_visible()
    expect(main.locator("nav").first).to_be_visible()  # the table of contents
    expect(main.locator("table").first).to_be_visible()  # the endpoints' table
    main.get_by_role("link", name="Provenance").click()
    expect(page).to_have_url(f"{portal.web}/documents/{portal.example_document}/provenance")
    for shown in ("smollm2", "local", "document-generation", "llm-gateway", "api-overview",
                  "User Service", "completeness"):
        expect(main).to_contain_text(shown)
    prompt = main.get_by_role("link", name=re.compile("api-overview")).first
    expect(prompt).to_have_attribute("href", re.compile(r"^/prompts/"))
    links = {a.get_attribute("href") or "" for a in main.locator("a[href^='/']").all()}
    broken = {link: answer.status for link in sorted(links)
              if (answer := page.request.get(portal.web + link)).status != 200}
    assert not broken, f"links of the provenance page that lead nowhere: {broken}"


def test_screenshots_of_the_document_and_its_provenance(portal: Portal, page: Page) -> None:
    """The README's pictures of the portal (docs/web-*.png), made from the example."""
    page.set_viewport_size(SHOT)
    DOCS.mkdir(exist_ok=True)
    for path, name in (("", "web-document.png"), ("/provenance", "web-provenance.png")):
        answer = page.goto(f"{portal.web}/documents/{portal.example_document}{path}")
        assert answer is not None and answer.status == 200
        expect(page.locator("main h1").first).to_be_visible()
        page.screenshot(path=DOCS / name)
        assert (DOCS / name).stat().st_size > 10_000  # a picture of a page, not a blank


def test_ask_for_a_document_and_watch_its_steps_arrive(portal: Portal, page: Page) -> None:
    # not the example's spec: the model writes anew, no answer comes from the cache
    spec = portal.store(user_service_spec().replace("title: User Service",
                                                     "title: Account Service"),
                        title="Account Service OpenAPI", format="yaml", tags=["openapi"])
    page.goto(f"{portal.web}/ask")
    page.fill("textarea[name=query]", "Create API documentation for the account service")
    page.select_option("select[name=format]", "markdown")
    page.select_option("select[name=spec_document_id]", spec)
    page.get_by_role("button", name="Show the plan").click()
    plan = page.locator("#plan")
    expect(plan).to_contain_text("document-generation")  # the plan, before anything runs
    page.get_by_role("button", name="Run it").click()
    expect(page).to_have_url(re.compile(r"/ask/executions/[0-9a-f-]+$"))
    page.evaluate("window.stayed = true")  # a reload would lose it
    steps, outcome = page.locator("#steps li"), page.locator("#outcome")
    seen = [steps.count()]
    deadline = time.monotonic() + RUN_GUARD
    while not re.search("Done|failed|Cancelled", outcome.inner_text()):
        assert time.monotonic() < deadline, f"still running after {RUN_GUARD}s: {seen}"
        seen.append(steps.count())
        page.wait_for_timeout(100)
    seen.append(steps.count())
    expect(outcome).to_contain_text("Done.")
    assert page.evaluate("window.stayed") is True
    assert seen[0] < seen[-1], f"no step arrived while the page was open: {seen}"
    assert "store" in steps.last.inner_text()  # the last step stored the document

    outcome.get_by_role("link", name="Read the document").click()
    expect(page).to_have_url(re.compile(r"/documents/[0-9a-f-]+$"))
    expect(page.locator("main article")).to_contain_text("Account Service")
    page.get_by_role("link", name="Provenance").click()
    expect(page.locator("main")).to_contain_text("smollm2")


def test_two_versions_side_by_side(portal: Portal, page: Page) -> None:
    document = portal.store("# Runbook\n\nRestart the queue.\n\nPage the on-call.\n",
                            title="Runbook")
    with portal.call("docstore") as docs:
        updated = docs.put(f"/documents/{document}", json={
            "content": "# Runbook\n\nDrain the queue, then restart it.\n\nPage the on-call.\n"})
        assert updated.status_code == 200, updated.text
    page.goto(f"{portal.web}/documents/{document}")
    expect(page.locator("main article")).to_contain_text("Drain the queue")
    page.select_option("select#old", "1")
    page.select_option("select#new", "2")
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(rf"/documents/{document}/diff\?old=1&new=2"))
    table = page.locator("main table")
    expect(table.locator("td.del")).to_contain_text("Restart the queue.")
    expect(table.locator("td.add")).to_contain_text("Drain the queue, then restart it.")
    unchanged = table.locator("tr", has_text="Page the on-call.")
    expect(unchanged.locator("td")).to_have_count(2)  # the same line on both sides

    page.goto(f"{portal.web}/documents/{document}?version=1")  # the version picker
    expect(page.locator("main article")).to_contain_text("Restart the queue.")
    expect(page.locator("main article")).not_to_contain_text("Drain")


def test_a_document_of_a_space_you_are_not_in_is_a_404(portal: Portal, browser: Browser
                                                        ) -> None:
    with portal.call("docstore", "user:owner") as docs:
        assert docs.post("/spaces", json={"name": "board"}).status_code == 201
    hidden = portal.store("# Board minutes\n\nzebracorn acquisition", subject="user:owner",
                          space="board", title="Board minutes")
    reader = browser.new_context()  # an editor, of the default space only
    try:
        page = reader.new_page()
        page.goto(portal.link("user:editor", "editor"))
        expect(page.locator("input[name=q]")).to_be_visible()
        for path in (f"/documents/{hidden}", f"/documents/{hidden}/provenance",
                     f"/documents/{hidden}/diff?old=1&new=1",
                     f"/documents/{hidden}/download"):
            answer = page.goto(portal.web + path)
            assert answer is not None and answer.status == 404, (path, answer and answer.status)
            assert "zebracorn" not in page.content() and "Board" not in page.content(), path
            expect(page.locator("main h1")).to_have_text("Not found")
        page.goto(portal.web + "/?q=zebracorn")
        expect(page.locator("main")).not_to_contain_text("Board minutes")
        mine = page.goto(f"{portal.web}/documents/{portal.example_document}")
        assert mine is not None and mine.status == 200  # the default space's, readable
    finally:
        reader.close()
