"""The search, document and diff pages against the real doc-store: snippets highlighted
and escaped, Markdown rendered with tables, code and a table of contents and no script
left in it, versions compared, downloads in every format, another space's document a
404, and a doc-store that is down a readable 503."""

from __future__ import annotations

import re
from typing import Any

import httpx

from llmdocs.core.config import Settings
from services.web.portal import docs_as, signed_in, start_portal

HOSTILE = """# Guide to widgets

Widgets <b>turn</b> sprockets.<script>document.title = "owned"</script>

<img src="x" onerror="alert(1)"><a href="javascript:alert(2)">click</a>
<iframe src="https://elsewhere.example/"></iframe>

## Parameters

| name | type |
|------|------|
| size | int  |

## The `turn` call

<pre tabindex="-1" role="button" aria-label="evil" onclick="alert(3)">raw</pre>

```python
def turn(widget):
    return widget.spin()
```
"""


async def test_search_finds_a_document_with_the_match_highlighted(settings: Settings,
                                                                  serve: Any) -> None:
    eco = await start_portal(settings, serve, ("docstore",))
    async with docs_as(eco) as docs:
        found = await docs.put("Sprockets <i>rotate</i> quickly under load.", title="Gears",
                               format="markdown", tags=["hardware"])
        await docs.put("Nothing to see.", title="Other", format="txt")
    async with signed_in(eco) as browser:
        home = await browser.get("/")
        assert home.status_code == 200
        assert 'name="q"' in home.text and 'data-focus-key="/"' in home.text
        assert f'href="/documents/{found.document_id}"' in home.text  # recent documents
        page = await browser.get("/", params={"q": "sprockets"})
        assert page.status_code == 200
        assert f'href="/documents/{found.document_id}"' in page.text
        assert re.search(r"<mark>Sprockets</mark>", page.text, re.I)
        assert "&lt;i&gt;rotate&lt;/i&gt;" in page.text  # the document's markup is text
        assert "Other" not in page.text.split("<main", 1)[1]
        filtered = await browser.get("/", params={"q": "sprockets", "tag": "software"})
        assert "Nothing matches" in filtered.text
        tagged = await browser.get("/", params={"q": "sprockets", "tag": "hardware",
                                                "after": "2000-01-01"})
        assert f'href="/documents/{found.document_id}"' in tagged.text
        as_a_form_sends_it = await browser.get("/", params={
            "q": "sprockets", "tag": "", "format": "", "after": "", "before": "", "stale": ""})
        assert as_a_form_sends_it.status_code == 200
        assert f'href="/documents/{found.document_id}"' in as_a_form_sends_it.text
        bad = await browser.get("/", params={"after": "yesterday"})
        assert bad.status_code == 400 and "after" in bad.text


async def test_a_document_is_rendered_and_its_script_is_gone(settings: Settings,
                                                             serve: Any) -> None:
    eco = await start_portal(settings, serve, ("docstore", "analysis"))
    async with docs_as(eco) as docs:
        stored = await docs.put(HOSTILE, title="Widgets", format="markdown")
    async with signed_in(eco) as browser:
        page = await browser.get(f"/documents/{stored.document_id}")
    assert page.status_code == 200, page.text
    body = page.text.split('<article class="doc">', 1)[1].split("</article>", 1)[0]
    assert "<script" not in body and "owned" not in body
    assert "onerror" not in body and "javascript:" not in body and "<iframe" not in body
    assert "<img" not in body  # nothing is fetched from elsewhere
    assert "<b>turn</b>" in body  # harmless markup stays
    assert '<table tabindex="0">' in body and "<td>size</td>" in body
    # code blocks scroll sideways: reachable by keyboard, with only the portal's attributes
    pres = [sorted(re.findall(r'\S+="[^"]*"', tag)) for tag in re.findall(r"<pre[^>]*>", body)]
    assert pres == [['aria-label="Code block"', 'role="region"', 'tabindex="0"']] * 2
    assert "evil" not in body and 'role="button"' not in body and "alert(3)" not in body
    assert '<a href="#s-the-turn-call">The turn call</a>' in page.text  # no backticks
    assert '<span class="k">def</span>' in body  # highlighted by pygments
    assert '<h2 id="s-parameters">' in body and 'href="#s-parameters"' in page.text
    assert "<title>Widgets · llmdocs</title>" in page.text
    for fmt in ("markdown", "pdf", "csv", "zip", "json", "txt"):
        assert f"download?format={fmt}" in page.text


async def test_two_versions_side_by_side(settings: Settings, serve: Any) -> None:
    eco = await start_portal(settings, serve, ("docstore", "analysis"))
    async with docs_as(eco) as docs:
        first = await docs.put("# T\n\nkeep\nold line\n", title="T", format="markdown")
        await docs.update(first.document_id, "# T\n\nkeep\nnew line\n")
    async with signed_in(eco) as browser:
        page = await browser.get(f"/documents/{first.document_id}")
        listed = f"/documents/{first.document_id}/versions?version=2"
        assert f'hx-get="{listed}"' in page.text and f'href="{listed}"' in page.text
        part = await browser.get(listed, headers={"HX-Request": "true"})  # htmx's, after
        assert 'name="old"' in part.text and 'name="new"' in part.text
        assert "<html" not in part.text and '<option value="2" selected>' in part.text
        alone = await browser.get(listed)  # without script: a page of its own
        assert "<title>Versions — T · llmdocs</title>" in alone.text
        assert 'name="old"' in alone.text
        shown = await browser.get(f"/documents/{first.document_id}", params={"version": 1})
        assert "old line" in shown.text and "new line" not in shown.text
        assert "v1 (the current one is v2)" in shown.text
        diff = await browser.get(f"/documents/{first.document_id}/diff",
                                 params={"old": 1, "new": 2})
        assert diff.status_code == 200, diff.text
        assert re.search(r'<td class="del">.*old line</td>', diff.text)
        assert re.search(r'<td class="add">.*new line</td>', diff.text)
        assert re.search(r'<td class="same">.*keep</td>', diff.text)
        missing = await browser.get(f"/documents/{first.document_id}/diff",
                                    params={"old": 1, "new": 9})
        assert missing.status_code == 404


async def test_downloads_in_every_format(settings: Settings, serve: Any) -> None:
    eco = await start_portal(settings, serve, ("docstore", "analysis"))
    async with docs_as(eco) as docs:
        stored = await docs.put(HOSTILE, title="Widgets", format="markdown")
        spec = await docs.put("openapi: 3.0.0\n", title="Spec", format="yaml")
    async with signed_in(eco) as browser:
        url = f"/documents/{stored.document_id}/download"
        pdf = await browser.get(url, params={"format": "pdf"})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert 'filename="widgets.pdf"' in pdf.headers["content-disposition"]
        csv = await browser.get(url, params={"format": "csv"})
        assert csv.status_code == 200 and "size" in csv.text
        original = await browser.get(url)
        assert original.status_code == 200 and original.text == HOSTILE
        bad = await browser.get(url, params={"format": "docx"})
        assert bad.status_code == 400 and "unknown format" in bad.text
        page = await browser.get(f"/documents/{spec.document_id}")
        assert "download?format=original" in page.text and "format=pdf" not in page.text
        assert (await browser.get(f"/documents/{spec.document_id}/download",
                                  params={"format": "pdf"})).status_code == 400


async def test_a_document_of_another_space_is_not_found(settings: Settings,
                                                        serve: Any) -> None:
    eco = await start_portal(settings, serve, ("docstore", "analysis"))
    async with docs_as(eco, "user:alice") as docs:
        await docs.create_space("secret")
        hidden = await docs.put("# Plans\n", title="Plans", format="markdown", space="secret")
    async with signed_in(eco, "user:bob", scopes=(), roles=["editor"]) as bob:
        for path in (f"/documents/{hidden.document_id}",
                     f"/documents/{hidden.document_id}/provenance",
                     f"/documents/{hidden.document_id}/download"):
            answer = await bob.get(path)
            assert answer.status_code == 404, (path, answer.text)
            assert "Plans" not in answer.text and "Not found" in answer.text
        assert "Plans" not in (await bob.get("/", params={"q": "plans"})).text
    async with signed_in(eco, "user:alice") as alice:
        assert (await alice.get(f"/documents/{hidden.document_id}")).status_code == 200


async def test_a_service_that_is_down_is_a_readable_503(settings: Settings,
                                                        serve: Any) -> None:
    eco = await start_portal(settings, serve, ())  # the doc-store is not running
    async with signed_in(eco) as browser:
        answer = await browser.get("/")
    assert answer.status_code == 503 and answer.headers["retry-after"]
    assert "doc" in answer.text and "not answering" in answer.text
    assert "Traceback" not in answer.text


async def test_unknown_parameters_are_readable_400s(settings: Settings, serve: Any) -> None:
    eco = await start_portal(settings, serve, ("docstore",))
    async with signed_in(eco) as browser:
        answer = await browser.get("/documents/x/diff", params={"old": "a", "new": 1})
        assert answer.status_code == 400 and "old" in answer.text
        assert answer.headers["content-type"].startswith("text/html")
        long = await browser.get("/documents/" + "a" * 37)
        assert long.status_code == 400
    async with httpx.AsyncClient(base_url=eco.url_for("web")) as anyone:
        health = await anyone.get("/health", params={"deep": "false"})
        assert health.status_code == 200 and health.json()["service"] == "web"


async def test_stale_documents_carry_a_banner_and_filter(settings: Settings,
                                                         serve: Any) -> None:
    eco = await start_portal(settings, serve, ("docstore", "analysis"))
    async with docs_as(eco) as docs:
        stale = await docs.put("# Pumps\n\nPumps move water.", title="Pumps", format="markdown")
        fresh = await docs.put("# Valves\n\nValves hold water.", title="Valves",
                               format="markdown")
        await docs.mark_stale(stale.document_id, "GET /pumps was removed from the spec",
                              "0190c0de-0000-7000-8000-000000000001")
    async with signed_in(eco) as browser:
        page = await browser.get(f"/documents/{stale.document_id}")
        assert page.status_code == 200
        banner = page.text.split('class="banner"', 1)[1].split("</div>", 1)[0]
        assert "stale" in banner and "GET /pumps was removed from the spec" in banner
        assert "cannot be shown right now" in banner  # the finding is not the analysis'
        assert 'class="banner"' not in (await browser.get(
            f"/documents/{fresh.document_id}")).text
        only_stale = await browser.get("/", params={"q": "water", "stale": "stale"})
        only_fresh = await browser.get("/", params={"q": "water", "stale": "fresh"})
        assert stale.document_id in only_stale.text and fresh.document_id not in only_stale.text
        assert fresh.document_id in only_fresh.text and stale.document_id not in only_fresh.text
        recent = await browser.get("/", params={"stale": "stale"})
        assert stale.document_id in recent.text and fresh.document_id not in recent.text
