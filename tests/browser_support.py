"""Chromium for the browser tests: one Playwright instance and one browser for the whole session
(Playwright's sync API can't be started twice in one process while another instance runs).

Without the ``playwright`` package or a Chromium binary ($GANDEMO_CHROMIUM, default /usr/bin/chromium)
the browser tests skip locally and FAIL when CI=true.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

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
