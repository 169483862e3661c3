"""What every page must pass in the browser: axe-core finds nothing serious, and the
page fits a 360 px phone without scrolling sideways."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Page

BLOCKING = {"serious", "critical"}
_axe = Axe()


def readable(violations: list[dict[str, Any]]) -> str:
    """One line per violation and one per element it was found on."""
    lines = []
    for v in violations:
        lines.append(f"{v['impact']}: {v['id']} — {v['help']} ({v['helpUrl']})")
        lines += [f"    {', '.join(map(str, node['target']))}: "
                  f"{node.get('failureSummary', '').splitlines()[-1:]}" for node in v["nodes"]]
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    """axe-core (bundled with axe-playwright-python) finds no serious or critical
    violation on the page as it is now."""
    results = _axe.run(page)
    blocking = [v for v in results.response["violations"] if v["impact"] in BLOCKING]
    assert not blocking, f"{page.url}:\n{readable(blocking)}"


def assert_fits(page: Page, width: int) -> None:
    """Nothing makes the page wider than the viewport (no sideways scrolling)."""
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, f"{page.url} is {wide} px wide at a {width} px viewport"
