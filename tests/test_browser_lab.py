"""The Lab tab in Chromium (Playwright, en-US) against ``python app.py`` in a subprocess: the view is drawn
when the tab opens (and again in a new language), Play animates the view and Pause stops it, D's and G's phases one at a time, two visitors with their own labs, a
lesson scenario and its cure, and "suddenly lower the learning rate".

Needs the ``playwright`` package and a Chromium binary ($GANDEMO_CHROMIUM, default /usr/bin/chromium).
Without them the tests skip locally and FAIL when CI=true. A failing step saves a screenshot into a
temp folder and names its path in the assertion message.

Frame times are taken inside the page (a MutationObserver on ``#lab-view`` with performance.now()),
so Playwright's own round trips, slow on a busy machine, don't count against the app.

While the lab plays, the page's main thread is busy applying ~7 updates a second (Gradio's frontend
spends ~100 ms of CPU on each on this machine). On 2 shared, overloaded cores Playwright's
actionability checks and locators, which wait on animation frames, then stall for over a minute,
so during play the tests read the page and press Pause through page.evaluate (the button's own
click(): the same Gradio event as a person's click) and poll on a timer, not on animation frames.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from app_harness import AppProcess, app  # noqa: F401 - `app` is the shared server fixture
from browser_support import Step, open_page, step_runner

from gandemo.i18n import t
from gandemo.lab.presets import PRESETS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.app, pytest.mark.browser, pytest.mark.timeout(240)]

STEP_TIMEOUT_MS = 60_000  # generous: 2 shared, often busy CPU cores
WANTED_FRAMES = 5  # the lesson view must change at least 5 times a second...
WINDOW_S = 3.0  # ...measured over the first 3 s of play

# Records every new src of the view's <img> with its time, from the page's own clock (the picture already
# shown, drawn when the tab opened, is not a frame of play).
WATCH_FRAMES = """() => {
    window.__frames = [];
    const shown = document.querySelector('#lab-view img');
    let last = shown && shown.getAttribute('src');
    const note = () => {
        const img = document.querySelector('#lab-view img');
        const src = img && img.getAttribute('src');
        if (src && src !== last) { last = src; window.__frames.push({src, t: performance.now()}); }
    };
    new MutationObserver(note).observe(document.querySelector('#lab-view'),
        {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}"""


@pytest.fixture
def page(browser: Browser, app: AppProcess, js_errors: list[str]) -> Iterator[Page]:  # noqa: F811
    yield from open_page(browser, app.url, js_errors, STEP_TIMEOUT_MS)


@pytest.fixture
def step(page: Page, app: AppProcess, js_errors: list[str], tmp_path_factory: pytest.TempPathFactory) -> Step:  # noqa: F811
    return step_runner(page, app, js_errors, tmp_path_factory, "browser-lab-failure")


def open_lab(page: Page) -> None:
    """Open the Lab tab and wait for its first picture (drawn on opening, before anything is pressed)."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Lab").click()
    expect(page.locator("#lab-play")).to_be_visible()
    expect(page.locator("#lab-narration")).to_contain_text("Press Play")
    expect(page.locator("#lab-view img")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect_text(page, "#lab-stats", r"\bstep \d+")


def text_of(page: Page, selector: str) -> str:
    """innerText of ``selector`` read in one evaluate (no locator: usable while the lab plays)."""
    return page.evaluate("sel => (document.querySelector(sel) || {}).innerText || ''", selector)


def press(page: Page, selector: str) -> None:
    """Click a button while the lab plays: the element's own click() (see the module docstring)."""
    page.evaluate("sel => document.querySelector(sel).click()", selector)


def shown_step(page: Page) -> int:
    """The step number in #lab-stats ("step N · ..."); -1 while it shows none."""
    found = re.search(r"\bstep (\d+)", text_of(page, "#lab-stats"))
    return int(found.group(1)) if found else -1


def wait_until(page: Page, js: str, arg: object = None) -> None:
    """Wait for the JS function ``js`` to return something truthy, polled on a timer."""
    page.wait_for_function(js, arg=arg, polling=200, timeout=STEP_TIMEOUT_MS)


def wait_for_step(page: Page, predicate: str) -> int:
    """Wait until #lab-stats shows a step n for which the JS expression ``predicate`` (of n) holds."""
    wait_until(page, f"() => {{ const m = /\\bstep (\\d+)/.exec(document.querySelector('#lab-stats').innerText);"
                     f" if (!m) return false; const n = Number(m[1]); return {predicate}; }}")
    return shown_step(page)


def wait_for_pause(page: Page) -> None:
    """Press Pause while playing and wait until the loop has ended (the narration says so)."""
    press(page, "#lab-pause")
    wait_until(page, "() => /^Paused\\./.test(document.querySelector('#lab-narration').innerText.trim())")


def expect_text(page: Page, selector: str, pattern: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator(selector)).to_contain_text(re.compile(pattern), timeout=STEP_TIMEOUT_MS)


def test_play_animates_the_view_and_pause_stops_it(page: Page, step: Step, app: AppProcess,  # noqa: F811
                                                   js_errors: list[str]) -> None:
    with step("open the Lab and watch the view"):
        open_lab(page)
        page.evaluate(WATCH_FRAMES)

    with step("press Play: the first frame arrives"):
        page.locator("#lab-play").click()
        wait_until(page, "() => window.__frames.length > 0")

    with step(f"the view keeps changing for {WINDOW_S:.0f} s"):
        wait_until(page, f"() => performance.now() - window.__frames[0].t > {WINDOW_S * 1000 + 100}")
        times = page.evaluate("() => window.__frames.map(f => f.t)")
        in_window = [t_ms for t_ms in times if t_ms - times[0] <= WINDOW_S * 1000]
        changes = len(in_window) - 1  # the first frame is where the clock starts
        fps = changes / WINDOW_S
        gaps = [round(b - a) for a, b in zip(in_window, in_window[1:])]
        server = re.search(r"([\d.]+) frames/s, (\d+) steps/s", text_of(page, "#lab-stats"))
        load, cpus = os.getloadavg()[0], os.cpu_count() or 1
        measured = (f"{changes} view updates in the first {WINDOW_S:.0f} s of play = {fps:.1f} frames/s in Chromium "
                    f"(gaps in ms: {gaps}); the server's stats line says "
                    f"{server.group(0) if server else '(no speed yet)'}; 1-min load average {load:.1f} on {cpus} CPUs")
        print(f"\nLab play: {measured}")
        assert changes >= 1, f"Play showed only its first frame: {measured}"

    with step("the stats line shows the step going up"):
        first = wait_for_step(page, "n > 0")
        later = wait_for_step(page, f"n > {first}")
        assert later > first > 0
        assert "Training: every step" in text_of(page, "#lab-narration")

    with step("press Pause: the loop ends and the view stops changing"):
        wait_for_pause(page)
        time.sleep(0.3)  # the last frame of the loop lands with the narration; let the page draw it
        frames_then, step_then = page.evaluate("() => window.__frames.length"), shown_step(page)
        time.sleep(1.5)
        frames_now, step_now = page.evaluate("() => window.__frames.length"), shown_step(page)
        assert frames_now == frames_then, f"the view changed {frames_now - frames_then} time(s) after Pause"
        assert step_now == step_then, f"the step went on after Pause: {step_then} -> {step_now}"

    assert js_errors == [], js_errors
    assert app.unexpected_errors() == [], app.log_tail()

    # The requirement: at least 5 view updates a second, i.e. at least 15 changes in the first 3 s
    # (5 changes in 3 s would pass at 1.7 frames/s, which is not what the lesson's view needs). With
    # other jobs on the 2 cores (load average above 1.5 per CPU) the app may honestly fall short:
    # then the test is marked xfail with the measurement, never passed quietly; on a machine that
    # isn't overloaded a shortfall fails.
    if fps < WANTED_FRAMES:
        why = f"the Lab view updates fewer than {WANTED_FRAMES} times a second: {measured}"
        if load > 1.5 * cpus:
            pytest.xfail(f"overloaded machine: {why}")
        pytest.fail(why)


def test_the_lab_is_drawn_when_opened_and_again_in_a_new_language(page: Page, step: Step, js_errors: list[str]) -> None:
    """A learner opening the Lab sees the data, G's first guesses and D's first opinion at once, not an empty
    box; the picture's labels follow the language switch."""
    from playwright.sync_api import expect

    with step("open the Lab: step 0 is drawn before anything is pressed"):
        open_lab(page)
        expect_text(page, "#lab-stats", r"\bstep 0\b")
        first = page.locator("#lab-view img").get_attribute("src")
        size = page.evaluate("() => { const i = document.querySelector('#lab-view img'); return [i.naturalWidth, i.naturalHeight]; }")
        assert size[0] >= 400 and size[1] >= 200, f"the first picture is {size}"

    with step("switch to Tiếng Việt: the same step drawn again, in Vietnamese"):
        page.locator("#language-switch").get_by_label("Tiếng Việt").check()
        expect(page.locator("#lab-stats")).to_contain_text(re.compile(r"\bbước 0\b"), timeout=STEP_TIMEOUT_MS)
        expect(page.locator("#lab-view img")).not_to_have_attribute("src", first, timeout=STEP_TIMEOUT_MS)
        expect(page.locator("#lab-play")).to_have_text(t("lab.play", "vi"))

    with step("back to English; one step still goes from 0 to 1 (opening trained nothing)"):
        page.locator("#language-switch").get_by_label("English").check()
        expect(page.locator("#lab-play")).to_have_text(t("lab.play", "en"))
        expect_text(page, "#lab-stats", r"\bstep 0\b")
        page.locator("#lab-step").click()
        expect_text(page, "#lab-stats", r"\bstep 1\b")

    assert js_errors == [], js_errors


def test_reproduce_a_figure_shows_its_measurements_in_words(page: Page, step: Step, js_errors: list[str]) -> None:
    """The "Reproduce a figure" section: a fresh run to the chosen step, its picture, and what it measured as a
    sentence in the page's language (scripts get the same as a dict from /lab_run)."""
    from playwright.sync_api import expect

    with step("open the Lab and its 'Reproduce a figure' section"):
        open_lab(page)
        page.locator("#language-switch").get_by_label("Tiếng Việt").check()
        expect(page.locator("#lab-play")).to_have_text(t("lab.play", "vi"))
        page.get_by_text(t("lab.section.figure", "vi"), exact=True).click()
    with step("run 40 steps from scratch: the picture and a Vietnamese summary, the live lab untouched"):
        page.locator("#lab-run-steps input").fill("40")
        page.locator("#lab-run").click()
        expect(page.locator("#lab-run-summary")).to_contain_text("Một lần chạy mới 40 bước", timeout=STEP_TIMEOUT_MS)
        expect(page.locator("#lab-run-summary")).to_contain_text(re.compile(r"\bbước 40\b"))
        expect(page.locator("#lab-run-summary")).not_to_contain_text("modes_covered")
        expect_text(page, "#lab-stats", r"\bbước 0\b")

    assert js_errors == [], js_errors


def test_one_step_in_two_phases_d_then_g(page: Page, step: Step, js_errors: list[str]) -> None:
    with step("open the Lab"):
        open_lab(page)

    with step("D's phase: D moves, G is frozen, the step is still open"):
        page.locator("#lab-phase-d").click()
        expect_text(page, "#lab-narration", r"D's phase \(1 update\(s\)\)")
        expect_text(page, "#lab-narration", r"G is frozen")
        expect_text(page, "#lab-stats", r"\bstep \d+")
        after_d = shown_step(page)
        assert after_d == 0, f"a fresh lab showed step {after_d} after D's phase alone"

    with step("G's phase: G moves, D is frozen, the step is done"):
        page.locator("#lab-phase-g").click()
        expect_text(page, "#lab-narration", rf"G's phase \(1 update\(s\)\), step {after_d + 1} done")
        expect_text(page, "#lab-narration", r"D is frozen")
        expect_text(page, "#lab-stats", rf"\bstep {after_d + 1}\b")
        assert shown_step(page) == after_d + 1

    with step("a second D phase then G phase: again exactly one more step"):
        page.locator("#lab-phase-d").click()
        expect_text(page, "#lab-narration", r"D's phase")
        expect_text(page, "#lab-stats", rf"\bstep {after_d + 1}\b")
        page.locator("#lab-phase-g").click()
        expect_text(page, "#lab-narration", rf"step {after_d + 2} done")
        expect_text(page, "#lab-stats", rf"\bstep {after_d + 2}\b")

    assert js_errors == [], js_errors


def test_two_visitors_have_their_own_labs(browser: Browser, page: Page, step: Step, app: AppProcess,  # noqa: F811
                                          js_errors: list[str]) -> None:
    other_errors: list[str] = []
    other_context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        other = other_context.new_page()
        other.set_default_timeout(STEP_TIMEOUT_MS)
        other.on("pageerror", lambda error: other_errors.append(str(error)))
        other.goto(app.url)

        with step("visitor B takes one step"):
            open_lab(other)
            other.locator("#lab-step").click()
            expect_text(other, "#lab-stats", r"\bstep 1\b")

        with step("visitor A plays until well past B's step"):
            open_lab(page)
            page.locator("#lab-play").click()
            wait_for_step(page, "n >= 30")

        with step("B still is at step 1 (A's play didn't touch B's lab)"):
            assert shown_step(other) == 1
            other.locator("#lab-step").click()
            expect_text(other, "#lab-stats", r"\bstep 2\b")
            assert shown_step(other) == 2

        with step("A is still playing on its own lab"):
            a_now = shown_step(page)
            wait_for_step(page, f"n > {a_now}")
            wait_for_pause(page)
            assert shown_step(page) > 2
    finally:
        other_context.close()

    assert js_errors == [] and other_errors == [], (js_errors, other_errors)


def test_mode_collapse_scenario_and_its_cure(page: Page, step: Step, js_errors: list[str]) -> None:
    from playwright.sync_api import expect

    preset = PRESETS["mode-collapse"]
    with step("open the Lab and choose the Mode collapse scenario"):
        open_lab(page)
        page.locator("#lab-preset input").click()
        page.get_by_role("option", name=t("lab.preset.mode-collapse", "en"), exact=True).click()

    with step("the scenario's problem and its cure are explained, the lab starts afresh"):
        text = page.locator("#lab-preset-text")
        expect(text).to_contain_text(t("lab.preset.mode-collapse", "en") + ".", timeout=STEP_TIMEOUT_MS)
        expect(text).to_contain_text(t("lab.preset.mode-collapse.problem", "en"))
        expect(text).to_contain_text(t("lab.preset.mode-collapse.cure", "en"))
        expect_text(page, "#lab-stats", r"\bstep 0\b")
        expect(page.locator("#lab-view img")).to_be_visible()

    with step("apply the cure: its note appears"):
        page.locator("#lab-cure").click()
        note = t("lab.cure.applied_live", "en", step=0) if preset.cure_is_live else t("lab.cure.restarted", "en")
        expect(text).to_contain_text(note, timeout=STEP_TIMEOUT_MS)
        expect(text).to_contain_text(t("lab.preset.mode-collapse.problem", "en"))

    with step("the cured lab trains"):
        page.locator("#lab-step").click()
        expect_text(page, "#lab-stats", r"\bstep 1\b")

    assert js_errors == [], js_errors


def test_suddenly_lower_the_learning_rate_divides_both_by_ten(page: Page, step: Step, app: AppProcess,  # noqa: F811
                                                             js_errors: list[str]) -> None:
    from playwright.sync_api import expect

    lr_g, lr_d = page.locator("#lab-lr-g input"), page.locator("#lab-lr-d input")

    with step("open the Lab and take a step at the default learning rates"):
        open_lab(page)
        expect(lr_g).to_have_value("0.001")
        expect(lr_d).to_have_value("0.001")
        page.locator("#lab-step").click()
        expect_text(page, "#lab-stats", r"learning rates G 0\.001, D 0\.001")

    with step("lower the learning rate: both become a tenth, at once"):
        page.locator("#lab-lower-lr").click()
        expect(lr_g).to_have_value("0.0001", timeout=STEP_TIMEOUT_MS)
        expect(lr_d).to_have_value("0.0001")
        expect_text(page, "#lab-stats", r"learning rates G 0\.0001, D 0\.0001")
        expect_text(page, "#lab-narration", r"Learning rates lowered to G 0\.0001, D 0\.0001 at step 1\b")

    with step("again: a tenth of that"):
        page.locator("#lab-lower-lr").click()
        expect(lr_g).to_have_value("1e-05", timeout=STEP_TIMEOUT_MS)
        expect(lr_d).to_have_value("1e-05")
        expect_text(page, "#lab-stats", r"learning rates G 1e-05, D 1e-05")

    with step("the lab trains on at the lowered rates"):
        page.locator("#lab-step").click()
        expect_text(page, "#lab-stats", r"\bstep 2\b.*learning rates G 1e-05, D 1e-05")

    assert js_errors == [], js_errors
    assert app.unexpected_errors() == [], app.log_tail()
