"""The app in the visitor's language, in Chromium (Playwright) against ``python app.py`` in a subprocess:
a vi-VN browser sees Vietnamese in every tab and an en-US one English; ``?lang=`` overrides the
browser; the switch on the page changes every text without a reload, and back; an error raised on
the server (an unusable upload in the Train tab) comes out in the page's language.

Expected texts come from the catalog (gandemo/i18n/*.yaml), so a reworded sentence doesn't break the
tests, but a text left in the wrong language does. Needs the ``playwright`` package and Chromium
($GANDEMO_CHROMIUM, default /usr/bin/chromium); without them the tests skip locally and FAIL when
CI=true. A failing step saves a screenshot into a temp folder and names its path in the message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from app_harness import AppProcess, app  # noqa: F401 - `app` is the shared server fixture
from browser_support import Step, step_runner

from gandemo.i18n import LANGUAGES, t

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.app, pytest.mark.browser, pytest.mark.timeout(240)]

STEP_TIMEOUT_MS = 60_000  # generous: 2 shared, often busy CPU cores
TABS = ["generate", "lab", "train", "style"]
# the catalog text whose first bold phrase must show in each tab (every tab opens with its lesson)
LESSONS = {"generate": "generate.lesson", "lab": "lab.intro", "train": "train.lesson", "style": "style.lesson"}
LOCALES = {"en": "en-US", "vi": "vi-VN"}
ACCEPT = {"en": "en-US,en;q=0.9", "vi": "vi-VN,vi;q=0.9"}


def headline(key: str, lang: str) -> str:
    """The first bold phrase of a catalog text, as the page shows it (markdown rendered)."""
    found = re.search(r"\*\*(.+?)\*\*", t(key, lang))
    assert found, f"{key} ({lang}) has no bold phrase to look for"
    return found.group(1)


def other(lang: str) -> str:
    return "vi" if lang == "en" else "en"


OpenPage = Callable[..., "Page"]


@pytest.fixture
def open_in(browser: Browser, app: AppProcess, js_errors: list[str]) -> Iterator[OpenPage]:  # noqa: F811
    """``open_in("vi", query="?lang=en", chooses="en")``: a fresh browser context with that locale and
    Accept-Language, on the app's page, whose load event must choose ``chooses`` (default: ``lang``);
    uncaught JavaScript errors go to ``js_errors``."""
    contexts = []

    def open_page(lang: str, query: str = "", chooses: str | None = None) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale=LOCALES[lang],
                                      extra_http_headers={"Accept-Language": ACCEPT[lang]})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        page.on("pageerror", lambda error: js_errors.append(str(error)))
        # The page is served in English; its load event (the one queue-less call with no inputs) then
        # returns the language switch's value and every text. Wait for that answer and check its
        # choice, so that an English page is English *after* the switch, not merely before it.
        with page.expect_response(lambda r: "/gradio_api/run/predict" in r.url
                                  and '"data":[]' in (r.request.post_data or "")) as answer:
            page.goto(app.url + "/" + query)
        switch = answer.value.json()["data"][0]
        chosen = switch.get("value") if isinstance(switch, dict) else switch
        assert chosen == (chooses or lang), f"the page's load event chose {chosen!r} for {LOCALES[lang]} {query}"
        page.wait_for_timeout(300)  # let the page apply the answer
        return page

    yield open_page
    for context in contexts:
        context.close()


def stepper(page: Page, app: AppProcess, js_errors: list[str], tmp_path_factory: pytest.TempPathFactory) -> Step:  # noqa: F811
    return step_runner(page, app, js_errors, tmp_path_factory, "browser-i18n-failure")


def shown_tab(page: Page):  # noqa: ANN201 - a Locator
    """The top-level tab's panel on show (Generate has tabs of its own inside: the first is the outer)."""
    return page.get_by_role("tabpanel").first


def expect_language(page: Page, lang: str) -> None:
    """The page shows ``lang``: tab names, the switch, the subtitle; none of the other language."""
    from playwright.sync_api import expect

    for tab in TABS:
        expect(page.get_by_role("tab", name=t(f"tab.{tab}", lang), exact=True)).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect(page.locator("#language-switch").get_by_label(LANGUAGES[lang], exact=True)).to_be_checked()
    body = page.locator("body")
    expect(body).to_contain_text(t("app.subtitle", lang))
    expect(body).not_to_contain_text(t("app.subtitle", other(lang)))
    for tab in TABS:
        expect(page.get_by_role("tab", name=t(f"tab.{tab}", other(lang)), exact=True)).to_have_count(0)


def visit_every_tab(page: Page, step: Step, lang: str) -> None:
    """Click each tab and find its lesson's headline (and not the other language's) inside it."""
    from playwright.sync_api import expect

    for tab in TABS:
        with step(f"{lang}: the {tab} tab"):
            page.get_by_role("tab", name=t(f"tab.{tab}", lang), exact=True).click()
            panel = shown_tab(page)
            expect(panel).to_contain_text(headline(LESSONS[tab], lang), timeout=STEP_TIMEOUT_MS)
            expect(panel).not_to_contain_text(headline(LESSONS[tab], other(lang)))
    with step(f"{lang}: buttons and labels too"):
        page.get_by_role("tab", name=t("tab.lab", lang), exact=True).click()
        expect(page.locator("#lab-play")).to_have_text(t("lab.play", lang))
        page.get_by_role("tab", name=t("tab.train", lang), exact=True).click()
        expect(page.locator("#train-start")).to_have_text(t("train.start", lang))
        page.get_by_role("tab", name=t("tab.style", lang), exact=True).click()  # the examples table's columns
        headers = shown_tab(page).locator("th")
        expect(headers.filter(has_text=t("style.content", lang))).to_have_count(1)
        expect(headers.filter(has_text=t("style.styles", lang))).to_have_count(1)
    with step(f"{lang}: an example row sets the images and keeps the labels in {lang}"):
        shown_tab(page).locator("tbody tr").first.click()
        expect(page.locator("#style-content img")).to_be_visible(timeout=STEP_TIMEOUT_MS)
        page.wait_for_timeout(300)  # the same update carries any properties besides the value
        expect(page.locator("#style-content")).to_contain_text(t("style.content", lang))
        expect(page.locator("#style-images")).to_contain_text(t("style.styles", lang))
        expect(page.locator("#style-content")).not_to_contain_text(t("style.content", other(lang)))


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_the_browser_language_is_used_in_every_tab(open_in: OpenPage, app: AppProcess, lang: str,  # noqa: F811
                                                   js_errors: list[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    page = open_in(lang)
    step = stepper(page, app, js_errors, tmp_path_factory)
    with step(f"a {LOCALES[lang]} browser gets the page in {lang}"):
        expect_language(page, lang)
    visit_every_tab(page, step, lang)
    assert js_errors == [], js_errors


@pytest.mark.parametrize(("browser_lang", "query_lang"), [("en", "vi"), ("vi", "en")])
def test_lang_in_the_address_beats_the_browser(open_in: OpenPage, app: AppProcess,  # noqa: F811
                                               browser_lang: str, query_lang: str, js_errors: list[str],
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    from playwright.sync_api import expect

    page = open_in(browser_lang, query=f"?lang={query_lang}", chooses=query_lang)
    step = stepper(page, app, js_errors, tmp_path_factory)
    with step(f"a {LOCALES[browser_lang]} browser on ?lang={query_lang} gets {query_lang}"):
        expect_language(page, query_lang)
        expect(shown_tab(page)).to_contain_text(headline("generate.lesson", query_lang))
    with step("the Lab in that language too"):
        page.get_by_role("tab", name=t("tab.lab", query_lang), exact=True).click()
        expect(shown_tab(page)).to_contain_text(headline("lab.intro", query_lang))
    assert js_errors == [], js_errors


def test_the_switch_changes_every_text_without_a_reload_and_back(open_in: OpenPage, app: AppProcess,  # noqa: F811
                                                                 js_errors: list[str],
                                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    from playwright.sync_api import expect

    page = open_in("en")
    step = stepper(page, app, js_errors, tmp_path_factory)
    navigations: list[str] = []

    with step("the page opens in English; mark it to see whether it reloads"):
        expect_language(page, "en")
        page.get_by_role("tab", name="Lab", exact=True).click()
        expect(shown_tab(page)).to_contain_text(headline("lab.intro", "en"))
        page.evaluate("() => { window.__notReloaded = true; }")
        page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)

    with step("click Tiếng Việt: Vietnamese everywhere, same page, same tab"):
        page.locator("#language-switch").get_by_label("Tiếng Việt").check()
        expect_language(page, "vi")
        expect(page.get_by_role("tab", name=t("tab.lab", "vi"), exact=True)).to_have_attribute("aria-selected", "true")
        expect(shown_tab(page)).to_contain_text(headline("lab.intro", "vi"))
        expect(page.locator("#lab-play")).to_have_text(t("lab.play", "vi"))
        assert page.evaluate("() => window.__notReloaded === true"), "the page reloaded"

    with step("a server reply now comes in Vietnamese too"):
        page.locator("#lab-phase-d").click()
        expect(page.locator("#lab-narration")).to_contain_text(
            re.sub(r"\*\*", "", t("lab.narrate.d_phase", "vi", d_steps=1)).split(".")[0], timeout=STEP_TIMEOUT_MS)

    with step("click English: back to English, still the same page"):
        page.locator("#language-switch").get_by_label("English").check()
        expect_language(page, "en")
        expect(shown_tab(page)).to_contain_text(headline("lab.intro", "en"))
        expect(page.locator("#lab-play")).to_have_text(t("lab.play", "en"))
        assert page.evaluate("() => window.__notReloaded === true"), "the page reloaded"
        assert navigations == [], f"the page navigated: {navigations}"

    assert js_errors == [], js_errors


def test_an_unusable_upload_is_explained_in_vietnamese(open_in: OpenPage, app: AppProcess, tmp_path: Path,  # noqa: F811
                                                       js_errors: list[str],
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    from playwright.sync_api import expect

    (tmp_path / "notes.png").write_text("not a picture, just a renamed text file")
    (tmp_path / "empty.png").write_bytes(b"")
    page = open_in("vi")
    step = stepper(page, app, js_errors, tmp_path_factory)

    with step("open Huấn luyện (Train) and upload two unusable files"):
        expect_language(page, "vi")
        page.get_by_role("tab", name=t("tab.train", "vi"), exact=True).click()
        page.locator("#train-files input[type=file]").set_input_files([str(tmp_path / "notes.png"),
                                                                       str(tmp_path / "empty.png")])
        expect(page.locator("#train-files").get_by_role("row")).to_have_count(2)

    with step("press Start: the toast says why, in Vietnamese"):
        page.evaluate("() => document.querySelectorAll('.toast-body').forEach(t => t.setAttribute('data-old', ''))")
        page.locator("#train-start").click()
        toast = page.locator(".toast-body:not([data-old])").filter(has_text="tệp").first
        expect(toast).to_contain_text("Chỉ 0 trong 2 tệp là ảnh dùng được", timeout=STEP_TIMEOUT_MS)
        expect(toast).to_contain_text("cần ít nhất 8")
        expect(toast).to_contain_text("1 tệp không phải ảnh")
        expect(toast).to_contain_text("1 tệp rỗng")
        for english in ("usable", "not an image", "empty file", "training needs"):
            expect(toast).not_to_contain_text(english)

    assert js_errors == [], js_errors
    assert app.unexpected_errors() == [], app.log_tail()


def test_gradios_own_words_follow_the_language(open_in: OpenPage, app: AppProcess, js_errors: list[str],  # noqa: F811
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    """Gradio's frontend has no Vietnamese: its upload-box words are swapped in the page (gradio.yaml)."""
    from playwright.sync_api import expect

    page = open_in("vi")
    step = stepper(page, app, js_errors, tmp_path_factory)
    upload_box = page.locator("#weights-upload")
    with step("a Vietnamese page: the upload box speaks Vietnamese"):
        expect(upload_box).to_contain_text(t("gradio.click_to_upload", "vi"))
        expect(upload_box).not_to_contain_text(t("gradio.click_to_upload", "en"))
    with step("switch to English: Gradio's own words are English again"):
        page.locator("#language-switch").get_by_label("English").check()
        expect(upload_box).to_contain_text(t("gradio.click_to_upload", "en"))
        expect(upload_box).not_to_contain_text(t("gradio.click_to_upload", "vi"))
    assert js_errors == [], js_errors
