"""The example report rendered by a real browser (headless Chromium through Playwright).

Checks that the page loads without console errors or failed requests, that every figure
decodes to a real image, that every link resolves, and saves a full-page screenshot (set
``CELLKIN_SCREENSHOT_DIR`` to keep it). Skipped where Chromium or Playwright is absent, unless
``CELLKIN_REQUIRE_BROWSER=1`` (set by ``.ci/run`` once it has installed Debian's chromium),
in which case their absence fails the test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REQUIRED = os.environ.get("CELLKIN_REQUIRE_BROWSER") == "1"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        message = "headless Chromium and Playwright are needed (apt install chromium)"
        if REQUIRED:
            pytest.fail(message + "; CELLKIN_REQUIRE_BROWSER=1 is set")
        pytest.skip(message)
    return path


@pytest.mark.slow
def test_report_renders_in_chromium(example_report, example_report_dir, tmp_path):
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    page_path = example_report_dir / "report.html"
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
            page.goto(page_path.as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images).map(i => [i.complete, i.naturalWidth,"
                " i.naturalHeight, i.alt])"
            )
            links = page.evaluate(
                "Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
            )
            title = page.title()
            headings = page.evaluate(
                "Array.from(document.querySelectorAll('h2')).map(h => h.textContent)"
            )
            screenshot = tmp_path / "report.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert not problems
    assert title == "CAR-T cellular kinetics study report"
    assert len(images) == len(example_report.figures) > 0
    for complete, width, height, alt in images:
        assert complete and width > 100 and height > 100, alt
    for href in links:
        if not href.startswith("#"):
            assert (example_report_dir / href).is_file(), href
    for heading in (
        "Endpoints at a glance",
        "Safety",
        "Efficacy (RECIST 1.1, PFS, OS)",
        "Exposure–response",
        "Methods and options",
        "Failures and exclusions",
    ):
        assert heading in headings  # fmt: skip
    assert screenshot.stat().st_size > 100_000
    keep = os.environ.get("CELLKIN_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(keep) / "report.png")
