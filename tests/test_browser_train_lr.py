"""Suddenly lowering the learning rate in the browser: Chromium (Playwright) starts a run on the Train
tab, presses "Lower the learning rate now" while it trains, sees the change announced and marked, stops
the run and finds the change in the run's saved state.

Needs the ``playwright`` package and Chromium (see tests/test_browser_train.py); shares its app.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from app_harness import AppProcess
from browser_support import Step
from test_app_train import train_app  # noqa: F401 - the shared app with a private runs folder
from test_browser_train import (  # noqa: F401 - page and step are fixtures
    MARK_OLD_TOASTS,
    PROGRESS_OR_ERROR,
    RUN_TIMEOUT_MS,
    STEP_TIMEOUT_MS,
    page,
    step,
)
from test_train import write_pngs

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.app, pytest.mark.browser, pytest.mark.timeout(240)]


def test_lower_the_learning_rate_while_it_trains(page: Page, step: Step, train_app: AppProcess,  # noqa: F811
                                                 tmp_path: Path, js_errors: list[str]) -> None:
    from playwright.sync_api import expect

    images = write_pngs(tmp_path / "shapes", 12)

    with step("open the Train tab, upload 12 images, choose 32 px and 2000 steps"):
        page.get_by_role("tab", name="Train").click()
        page.locator("#train-files input[type=file]").set_input_files([str(p) for p in images])
        expect(page.locator("#train-files").get_by_role("row")).to_have_count(12)
        page.get_by_role("radio", name="32", exact=True).check()
        page.get_by_role("spinbutton", name="Steps", exact=True).fill("2000")

    with step("the advanced settings offer automatic drops (off by default)"):
        page.get_by_role("button", name="Advanced settings").click()
        auto = page.get_by_role("checkbox", name=re.compile(r"^Lower the learning rates automatically"))
        expect(auto).to_be_visible()
        expect(auto).not_to_be_checked()

    with step("start training and see progress"):
        page.evaluate(MARK_OLD_TOASTS)
        page.locator("#train-start").click()
        page.locator("#train-status").scroll_into_view_if_needed()
        outcome = page.wait_for_function(PROGRESS_OR_ERROR, timeout=RUN_TIMEOUT_MS).json_value()
        assert outcome == "progress", f"no training progress; the page shows {outcome}"

    with step("the new-rate boxes start empty ('keep'), not at a 0 that reads as a rate"):
        for box in ("#train-lr-g input", "#train-lr-d input"):
            expect(page.locator(box)).to_have_value("")
            expect(page.locator(box)).to_have_attribute("placeholder", "empty: keep")

    with step("press 'Lower the learning rate now' and see what the next step will use"):
        page.locator("#train-lr-lower").click()
        expect(page.locator("#train-lr-note")).to_contain_text(
            "From the next step: learning rate G 2.00e-05, D 2.00e-05.", timeout=STEP_TIMEOUT_MS)
        expect(page.locator("#train-lr-g input")).to_have_value(re.compile(r"^(2e-05|0\.00002)$"))

    with step("the change is announced in the health panel at the step it took effect"):
        expect(page.locator("#train-health")).to_contain_text(
            re.compile(r"Learning rates changed by hand: G 2\.00e-04 → 2\.00e-05, D 2\.00e-04 → 2\.00e-05"),
            timeout=RUN_TIMEOUT_MS)

    with step("press Stop; the saved run keeps the change"):
        page.locator("#train-stop").click()
        expect(page.locator("#train-status")).to_contain_text(re.compile(r"Stopped at step \d+|Finished 2000 steps"),
                                                              timeout=RUN_TIMEOUT_MS)
        expect(page.locator("#train-stop-note")).not_to_contain_text("Stopping", timeout=STEP_TIMEOUT_MS)  # past now
        run_dir = Path(page.get_by_label("Run folder").input_value())
        state = json.loads((run_dir / "training" / "state.json").read_text())
        assert [(c["reason"], c["lr_g"][1]) for c in state["lr_changes"]] == [("manual", pytest.approx(2e-5))], state[
            "lr_changes"]

    assert js_errors == [], js_errors
    assert train_app.unexpected_errors() == [], train_app.log_tail()
