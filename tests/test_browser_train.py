"""Training in the browser: Chromium (Playwright) uploads images on the Train tab, starts a run,
watches the first preview appear, presses Stop and sees the run end.

Needs the ``playwright`` package and Chromium ($GANDEMO_CHROMIUM, default /usr/bin/chromium). Without
them the test skips locally and FAILS when CI=true. A failing step saves a screenshot into a temp
folder and names its path in the assertion message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from app_harness import AppProcess
from browser_support import Step, open_page, set_slider, step_runner
from test_app_train import train_app  # noqa: F401 - the shared app with a private runs folder
from test_train import write_pngs

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.app, pytest.mark.browser, pytest.mark.timeout(240)]

STEP_TIMEOUT_MS = 60_000  # generous: 2 shared, often busy CPU cores
RUN_TIMEOUT_MS = 120_000


# Resolves to "progress" once the status shows a step > 0, or to the error the page shows instead
# (a new Gradio error toast or the "Error" badge on the status), so a broken run fails fast.
MARK_OLD_TOASTS = "() => document.querySelectorAll('.toast-body').forEach(t => t.setAttribute('data-before-start', ''))"
PROGRESS_OR_ERROR = """() => {
    const status = document.querySelector('#train-status');
    if (/Step [1-9][0-9]* \\/ 2000/.test(status.innerText)) return 'progress';
    for (const toast of document.querySelectorAll('.toast-body:not([data-before-start])')) {
        if (/error/i.test(toast.className + ' ' + toast.innerText)) return 'an error toast: ' + toast.innerText;
    }
    if (/\\bError\\b|failed/.test(status.innerText)) return 'an error status: ' + status.innerText;
    return false;
}"""

# Gradio's status-tracker badges that say "Error" (toasts excluded): where a failed run shows its failure
ERROR_BADGES = """() => [...document.querySelectorAll('.error')]
    .filter(e => e.innerText.trim() === 'Error' && !e.closest('.toast-body'))
    .map(e => (e.closest('[id]') || {}).id || '?')"""


@pytest.fixture
def page(browser: Browser, train_app: AppProcess, js_errors: list[str]) -> Iterator[Page]:  # noqa: F811
    yield from open_page(browser, train_app.url, js_errors, STEP_TIMEOUT_MS)


@pytest.fixture
def step(page: Page, train_app: AppProcess, js_errors: list[str],  # noqa: F811
         tmp_path_factory: pytest.TempPathFactory) -> Step:
    return step_runner(page, train_app, js_errors, tmp_path_factory, "browser-train-failure")


def test_upload_train_watch_the_preview_and_stop(page: Page, step: Step, train_app: AppProcess,  # noqa: F811
                                                 tmp_path: Path, js_errors: list[str]) -> None:
    from playwright.sync_api import expect

    images = write_pngs(tmp_path / "shapes", 12)

    with step("open the Train tab"):
        page.get_by_role("tab", name="Train").click()
        expect(page.locator("#train-status")).to_contain_text("Upload at least 8 images")

    with step("upload 12 images"):
        page.locator("#train-files input[type=file]").set_input_files([str(p) for p in images])
        rows = page.locator("#train-files").get_by_role("row")
        expect(rows).to_have_count(12)  # one row per uploaded file, once the upload is done
        expect(rows.last).to_have_accessible_name(re.compile(r"^shape-11\.png"))

    with step("the length box is relabelled when it counts epochs"):
        page.get_by_role("radio", name="epochs", exact=True).check()
        expect(page.get_by_role("spinbutton", name="Epochs", exact=True)).to_be_visible()
        page.get_by_role("radio", name="steps", exact=True).check()
        expect(page.get_by_role("spinbutton", name="Steps", exact=True)).to_be_visible()

    with step("choose 32 px, 2000 steps, a narrow network and previews every 50 steps"):
        page.get_by_role("radio", name="32", exact=True).check()
        page.get_by_role("spinbutton", name="Steps", exact=True).fill("2000")
        page.get_by_role("button", name="Advanced settings").click()
        for label, value in (("Network width", "16"), ("Batch size", "8"), ("Preview every N steps", "50")):
            set_slider(page, label, value)

    with step("start training and see progress and the first samples"):
        page.evaluate(MARK_OLD_TOASTS)  # e.g. a page-load message of the Generate tab: not this run's
        page.locator("#train-start").click()
        # the person scrolls up to watch (the preview <img> loads lazily: only once it is in view)
        page.locator("#train-status").scroll_into_view_if_needed()
        outcome = page.wait_for_function(PROGRESS_OR_ERROR, timeout=RUN_TIMEOUT_MS).json_value()
        assert outcome == "progress", f"no training progress; the page shows {outcome}"
        page.locator("#train-preview").scroll_into_view_if_needed()
        page.wait_for_function(
            "() => { const i = document.querySelector('#train-preview img');"
            " return i && i.getAttribute('src') && i.complete && i.naturalWidth > 0; }",
            timeout=RUN_TIMEOUT_MS,
        )

    with step("reload the page (it opens on the Generate tab): the Train tab re-attaches to the running job"):
        page.reload()
        expect(page.locator("#generate-btn")).to_be_visible(timeout=RUN_TIMEOUT_MS)
        page.get_by_role("tab", name="Train").click()
        expect(page.locator("#train-status")).to_contain_text(re.compile(r"Step \d+ / 2000"), timeout=RUN_TIMEOUT_MS)

    with step("press Stop and see the run end with its checkpoint"):
        page.locator("#train-stop").click()
        expect(page.locator("#train-status")).to_contain_text(re.compile(r"Stopped at step \d+|Finished 2000 steps"),
                                                              timeout=RUN_TIMEOUT_MS)
        status = page.locator("#train-status").inner_text()
        run_dir = page.get_by_label("Run folder").input_value()
        assert run_dir and (Path(run_dir) / "training" / "state.json").is_file(), run_dir
        assert str(Path(run_dir).parent) == str(train_app.workdir / "runs"), run_dir
        if "Stopped" in status:
            assert 0 < int(status.split("Stopped at step ")[1].split(";")[0]) < 2000, status
        expect(page.locator("a[href$='.zip']").first).to_be_visible()

    assert js_errors == [], js_errors
    assert train_app.unexpected_errors() == [], train_app.log_tail()


def test_unusable_upload_is_explained_once_and_the_panels_stay_clean(page: Page, step: Step, train_app: AppProcess,  # noqa: F811
                                                                    tmp_path: Path, js_errors: list[str]) -> None:
    from playwright.sync_api import expect

    (tmp_path / "notes.png").write_text("not a picture, just a renamed text file")
    (tmp_path / "empty.png").write_bytes(b"")

    with step("open the Train tab and upload two unusable files"):
        page.get_by_role("tab", name="Train").click()
        page.locator("#train-files input[type=file]").set_input_files([str(tmp_path / "notes.png"),
                                                                       str(tmp_path / "empty.png")])
        expect(page.locator("#train-files").get_by_role("row")).to_have_count(2)

    with step("press Start and read why nothing trains"):
        page.evaluate(MARK_OLD_TOASTS)
        page.locator("#train-start").click()
        toast = page.locator(".toast-body:not([data-before-start])").filter(has_text="usable images")
        expect(toast.first).to_contain_text("Only 0 of 2 files are usable images; training needs at least 8",
                                            timeout=STEP_TIMEOUT_MS)
        expect(toast.first).to_contain_text("1 not an image")
        expect(toast.first).to_contain_text("1 empty file")

    with step("one Error badge, on the status line; the preview, plots and downloads are not marked"):
        page.wait_for_function(f"() => ({ERROR_BADGES})().length > 0", timeout=STEP_TIMEOUT_MS)
        assert page.evaluate(ERROR_BADGES) == ["train-status"]

    assert js_errors == [], js_errors
    assert train_app.unexpected_errors() == [], train_app.log_tail()
