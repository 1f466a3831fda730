"""Style transfer in the browser: Chromium (Playwright) opens the Style transfer tab, picks the first example,
runs a short transfer and sees the result, then starts a long one and stops it.

Uses the app of tests/test_app_style.py (VGG19 from the stand-in Hub, one torch thread), started only once
Chromium is known to work.
Needs the ``playwright`` package and Chromium ($GANDEMO_CHROMIUM, default /usr/bin/chromium); without
them the test skips locally and FAILS when CI=true. A failing step saves a screenshot into a temp folder
and names its path in the assertion message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from app_harness import AppProcess
from browser_support import Step, open_page, set_slider, step_runner
from hub_server import StandInHub
from test_app_style import SHARED_STYLE_APP

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.app, pytest.mark.browser, pytest.mark.timeout(240)]

STEP_TIMEOUT_MS = 60_000  # generous: 2 shared, often busy CPU cores
STOP_TIMEOUT_MS = 15_000  # Stop is checked inside every network pass

# Marks the error toasts already on the page, so a run's own errors can be told apart.
MARK_OLD_TOASTS = "() => document.querySelectorAll('.toast-body').forEach(t => t.setAttribute('data-before-start', ''))"
# Resolves to 'match' once #style-status matches the pattern, or to the error the page shows instead
# (a new error toast, or an error badge on the status), so a broken run fails fast with its message.
STATUS_OR_ERROR = """pattern => {
    const status = document.querySelector('#style-status');
    if (status && new RegExp(pattern).test(status.innerText)) return 'match';
    for (const toast of document.querySelectorAll('.toast-body:not([data-before-start])')) {
        if (/error/i.test(toast.className + ' ' + toast.innerText)) return 'an error toast: ' + toast.innerText;
    }
    if (status && /\\bError\\b/.test(status.innerText)) return 'an error status: ' + status.innerText;
    return false;
}"""








@pytest.fixture(scope="module")
def style_app(browser: Browser, hub: StandInHub) -> Iterator[AppProcess]:
    """The style app shared with tests/test_app_style.py; depends on ``browser`` so that a missing Chromium
    skips (or fails) before any app starts."""
    app = SHARED_STYLE_APP.acquire_with(hub)
    try:
        yield app
    finally:
        SHARED_STYLE_APP.release()




@pytest.fixture
def page(browser: Browser, style_app: AppProcess, js_errors: list[str]) -> Iterator[Page]:
    yield from open_page(browser, style_app.url, js_errors, STEP_TIMEOUT_MS)




@pytest.fixture
def step(page: Page, style_app: AppProcess, js_errors: list[str], tmp_path_factory: pytest.TempPathFactory) -> Step:
    return step_runner(page, style_app, js_errors, tmp_path_factory, "browser-style-failure")


def wait_for_status(page: Page, pattern: str, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
    outcome = page.wait_for_function(STATUS_OR_ERROR, arg=pattern, timeout=timeout_ms).json_value()
    assert outcome == "match", f"waiting for a status matching {pattern!r}, the page shows {outcome}"


def image_loaded(page: Page, selector: str) -> dict[str, Any]:
    """Wait until the <img> under ``selector`` shows a decoded picture; its src and natural size."""
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel + ' img');"
        " return i && i.getAttribute('src') && i.complete && i.naturalWidth > 0; }",
        arg=selector,
    )
    return page.locator(f"{selector} img").first.evaluate(
        "i => ({src: i.getAttribute('src'), width: i.naturalWidth, height: i.naturalHeight})")


def test_stylize_an_example_then_stop_a_long_run(page: Page, step: Step, js_errors: list[str]) -> None:
    from playwright.sync_api import expect

    with step("open the Style transfer tab"):
        page.get_by_role("tab", name="Style transfer").click()
        expect(page.locator("#style-run")).to_be_visible()

    with step("click the first example: content and style fill in"):
        page.locator("[data-testid='dataset-cell-0-0']").click()
        content = image_loaded(page, "#style-content")
        assert "content_" in content["src"] and content["width"] > 0, content
        style = image_loaded(page, "#style-images")
        assert "style_" in style["src"], style

    with step("a short run: 3 steps at 96 px"):
        set_slider(page, "Steps", 3)
        set_slider(page, "Output size (long side, px)", 96)
        page.evaluate(MARK_OLD_TOASTS)
        page.locator("#style-run").click()
        wait_for_status(page, r"Done")
        expect(page.locator("#style-status")).to_contain_text(re.compile(r"96×72 px"))  # the 512 x 384 example
        result = image_loaded(page, "#style-result")
        assert (result["width"], result["height"]) == (96, 72), result
        # the download (the File component shows the name's stem and extension in separate elements)
        expect(page.locator("body")).to_contain_text(re.compile(r"stylized\s*\.png"))

    with step("a long run (300 steps at 256 px) shows progress"):
        set_slider(page, "Steps", 300)
        set_slider(page, "Output size (long side, px)", 256)
        page.evaluate(MARK_OLD_TOASTS)
        page.locator("#style-run").click()
        wait_for_status(page, r"step [1-9]\d*/300")

    with step("Stop ends it with the image so far"):
        page.locator("#style-stop").click()
        wait_for_status(page, r"Stopped", timeout_ms=STOP_TIMEOUT_MS)
        expect(page.locator("#style-status")).to_contain_text(re.compile(r"256×192 px"))
        result = image_loaded(page, "#style-result")
        assert (result["width"], result["height"]) == (256, 192), result
        expect(page.locator("body")).to_contain_text(re.compile(r"stylized_partial\s*\.png"))

    with step("no JavaScript errors"):
        assert js_errors == []
