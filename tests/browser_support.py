"""Chromium for the browser tests: one Playwright instance and one browser for the whole session
(Playwright's sync API can't be started twice in one process while another instance runs).

Without the ``playwright`` package or a Chromium binary ($GANDEMO_CHROMIUM, default /usr/bin/chromium)
the browser tests skip locally and FAIL when CI=true.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from app_harness import AppProcess
    from playwright.sync_api import Browser, Page

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def chromium_path() -> str | None:
    wanted = os.environ.get("GANDEMO_CHROMIUM", "/usr/bin/chromium")
    if Path(wanted).is_file():
        return wanted
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing(reason: str) -> NoReturn:
    """Skip on a developer machine; in CI a missing browser is a broken setup, so fail loudly."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but the browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def launch_browser() -> Iterator[Browser]:
    """The body of the session fixture ``browser`` (see conftest.py)."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is not installed (pip install playwright)")
    executable = chromium_path()
    if executable is None:
        missing("no Chromium found at $GANDEMO_CHROMIUM or /usr/bin/chromium (apt-get install chromium)")
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except PlaywrightError as e:
            missing(f"Chromium at {executable} does not start: {str(e).splitlines()[0]}")
        yield browser
        browser.close()


Step = Callable[[str], AbstractContextManager[None]]


def open_page(browser: Browser, url: str, js_errors: list[str], timeout_ms: int) -> Iterator[Page]:
    """The body of each browser module's ``page`` fixture: a fresh context on ``url`` that records
    uncaught JavaScript errors into ``js_errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.on("pageerror", lambda error: js_errors.append(str(error)))
    page.goto(url)
    yield page
    context.close()


def step_runner(page: Page, app: AppProcess, js_errors: list[str], tmp_path_factory: pytest.TempPathFactory,
                folder: str = "browser-failure") -> Step:
    """``with step("what a person does"):`` -- on failure, a screenshot (in a temp folder) and the app's
    log join the assertion message."""
    from playwright.sync_api import Error as PlaywrightError

    @contextmanager
    def run(name: str) -> Iterator[None]:
        try:
            yield
        except (AssertionError, PlaywrightError) as e:
            shot = tmp_path_factory.mktemp(folder) / (re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-") + ".png")
            try:
                page.screenshot(path=str(shot), full_page=True)
                where = f"screenshot: {shot}"
            except PlaywrightError as shot_error:
                where = f"(no screenshot: {shot_error})"
            raise AssertionError(
                f"Browser step failed: {name}\n{where}\n{type(e).__name__}: {e}\n"
                f"page errors: {js_errors or 'none'}\n{app.log_tail(25)}"
            ) from e

    return run


def set_slider(page: Page, label: str, value: int | str, tries: int = 3) -> None:
    """Type into a slider's number box, as a person would, and check that the slider followed.

    A slider inside an accordion is mounted when the accordion opens, and on a busy machine its first
    render can land after the typing and put the initial value back (seen in CI, also after waiting for
    the slider to show a value first). A person would see that and type again; so does this, at most
    ``tries`` times. A box that never takes the value still fails."""
    from playwright.sync_api import expect

    box = page.get_by_label(f"number input for {label}", exact=True)
    slider = page.get_by_label(f"range slider for {label}", exact=True)
    for attempt in range(tries):
        expect(slider).to_have_value(re.compile(r"^\d"))  # mounted, showing its first value
        box.fill(str(value))
        box.press("Enter")
        box.blur()
        try:
            expect(slider).to_have_value(str(value), timeout=3_000 if attempt < tries - 1 else 5_000)
            return
        except AssertionError:
            if attempt == tries - 1:
                raise
