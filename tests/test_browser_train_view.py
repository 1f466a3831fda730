"""The Train tab as a person sees it (issue 11), in Chromium at 1400 x 1000:

- 40 uploaded files make a summary line, not a page of rows: the page stays under 1.5 screen heights and
  the summary, the settings and Start are on the first screen;
- "what your GAN will learn from" shows the usable images exactly as the trainer reads them (the picture
  in the page is the core's contact sheet of the same files, pixel for pixel) and changes with the
  resolution and the fit;
- the plots' legends name the curves in words (no "curve"), and the plots never go blank while training
  updates them;
- while it trains, real training images stand next to the samples at the same size, with a strip of
  earlier samples; at the end the samples come as a GIF, kept in the run's previews/ (not in the zip).

Needs the ``playwright`` package and Chromium (see tests/test_browser_train.py); shares its app.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from app_harness import AppProcess
from browser_support import Step, set_slider
from intake_corpus import good_images, image_bytes, noise_image
from PIL import Image
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

from gandemo.images import upscale
from gandemo.intake import IntakeOptions
from gandemo.intake.sheet import contact_sheet
from gandemo.ui.train_tab import GIF_NAME, sheet_scale

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.app, pytest.mark.browser, pytest.mark.timeout(300)]

VIEWPORT = {"width": 1400, "height": 1000}
CURVES = ("D's loss", "G's loss", "D(x): D on real images", "D(G(z)): D on G's images")

# the text of each plot's rendered legend (Vega draws it as SVG text)
LEGENDS = """() => Object.fromEntries(['train-loss-plot', 'train-prob-plot'].map(id => [id,
    [...document.querySelectorAll('#' + id + ' svg g.role-legend text')].map(t => t.textContent)]))"""
# Counts, on every frame the browser paints, the frames on which a plot that had drawn lines shows none
WATCH_PLOTS = """() => {
    window.plotWatch = {frames: 0, blank: [], drawn: {}};
    const ids = ['train-loss-plot', 'train-prob-plot'];
    const tick = () => {
        for (const id of ids) {
            const lines = document.querySelectorAll('#' + id + ' svg g.mark-line path').length;
            if (lines > 0) window.plotWatch.drawn[id] = true;
            else if (window.plotWatch.drawn[id]) window.plotWatch.blank.push(id);
        }
        window.plotWatch.frames += 1;
        requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
}"""
LOADED = "(selector) => { const i = document.querySelector(selector); return i && i.complete && i.naturalWidth > 0; }"


def upload_set(folder: Path) -> list[Path]:
    """37 usable photos-to-be (not square: crop and pad differ) and 3 files intake skips: 40 files."""
    paths = good_images(folder, 37, size=(90, 60))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("not a picture, just a renamed text file")
    (folder / "cut.jpg").write_bytes(image_bytes(noise_image((100, 100), 9), "JPEG")[:900])
    return [*paths, folder / "empty.jpg", folder / "notes.png", folder / "cut.jpg"]


def shown_sheet(page: Page) -> Image.Image:  # noqa: F811
    src = page.locator("#train-learn-from img").get_attribute("src")
    assert src, "the contact sheet has no picture"
    response = page.request.get(src)
    assert response.ok, f"{src}: HTTP {response.status}"
    return Image.open(io.BytesIO(response.body())).copy()


def expected_sheet(paths: list[Path], **options: object) -> Image.Image:
    """What the page must show: the core's contact sheet of the same files, enlarged as the tab enlarges it."""
    sheet = contact_sheet(paths, IntakeOptions(**options))
    assert sheet.image is not None
    return upscale(sheet.image, sheet_scale(sheet.image))


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and a.convert("RGBA").tobytes() == b.convert("RGBA").tobytes()


def test_forty_files_make_a_summary_and_a_contact_sheet_on_one_screen(page: Page, step: Step, train_app: AppProcess,  # noqa: F811
                                                                      tmp_path: Path, js_errors: list[str]) -> None:
    from playwright.sync_api import expect

    files = upload_set(tmp_path / "upload")
    page.set_viewport_size(VIEWPORT)

    with step("open the Train tab: the legends already name the curves"):
        page.get_by_role("tab", name="Train").click()
        expect(page.locator("#train-learn-from-hint")).to_contain_text("Upload images to see them here")
        page.wait_for_function(f"() => ({LEGENDS})()['train-prob-plot'].length >= 2", timeout=STEP_TIMEOUT_MS)
        legends = page.evaluate(LEGENDS)
        assert legends["train-loss-plot"] == list(CURVES[:2]), legends
        assert legends["train-prob-plot"] == list(CURVES[2:]), legends

    with step("upload 40 files: one summary line names the 3 skipped ones"):
        page.get_by_role("radio", name="32", exact=True).check()
        page.locator("#train-files input[type=file]").set_input_files([str(p) for p in files])
        expect(page.locator("#train-intake")).to_contain_text(
            "40 files: 37 usable, 3 skipped (empty.jpg: empty file, notes.png: not an image, cut.jpg: truncated)",
            timeout=STEP_TIMEOUT_MS)

    with step("switch to Vietnamese and back: the summary line follows the language"):
        page.get_by_role("radio", name="Tiếng Việt").check()
        expect(page.locator("#train-intake")).to_contain_text("40 tệp: 37 ảnh dùng được, 3 tệp bị bỏ qua",
                                                              timeout=STEP_TIMEOUT_MS)
        page.get_by_role("radio", name="English").check()
        expect(page.locator("#train-intake")).to_contain_text("40 files: 37 usable, 3 skipped",
                                                              timeout=STEP_TIMEOUT_MS)

    with step("the page stays under 1.5 screen heights, with summary, settings and Start on the first screen"):
        page.evaluate("() => window.scrollTo(0, 0)")
        height = page.evaluate("() => document.documentElement.scrollHeight")
        assert height < 1.5 * VIEWPORT["height"], f"the page is {height} px tall after uploading 40 files"
        for what in ("#train-intake", "#train-start", "#train-stop"):
            box = page.locator(what).bounding_box()
            assert box and box["y"] + box["height"] <= VIEWPORT["height"], f"{what} is below the first screen: {box}"
        for radio in ("32", "crop"):
            box = page.get_by_role("radio", name=radio, exact=True).bounding_box()
            assert box and box["y"] + box["height"] <= VIEWPORT["height"], f"the {radio} setting is off screen"

    with step("the contact sheet shows the 37 usable images at 32 x 32, as the trainer reads them"):
        caption = page.locator("#train-learn-from-caption")
        expect(caption).to_contain_text("All 37 usable images at 32×32 px, centre-cropped", timeout=STEP_TIMEOUT_MS)
        expect(page.locator("#train-learn-from-hint")).to_be_hidden()
        page.wait_for_function(LOADED, arg="#train-learn-from img", timeout=STEP_TIMEOUT_MS)
        at_32 = shown_sheet(page)
        assert same_pixels(at_32, expected_sheet(files, size=32)), "the page's sheet is not the trainer's images at 32 px"

    with step("choose 64 px: the sheet changes to the images at 64 x 64"):
        page.get_by_role("radio", name="64", exact=True).check()
        expect(caption).to_contain_text("All 37 usable images at 64×64 px", timeout=STEP_TIMEOUT_MS)
        page.wait_for_function(LOADED, arg="#train-learn-from img", timeout=STEP_TIMEOUT_MS)
        at_64 = shown_sheet(page)
        assert same_pixels(at_64, expected_sheet(files, size=64)), "the page's sheet is not the trainer's images at 64 px"
        assert not same_pixels(at_64, at_32)

    with step("choose pad: the whole images, padded to squares"):
        page.get_by_role("radio", name="pad", exact=True).check()
        expect(caption).to_contain_text("64×64 px, padded to a square", timeout=STEP_TIMEOUT_MS)
        page.wait_for_function(LOADED, arg="#train-learn-from img", timeout=STEP_TIMEOUT_MS)
        assert same_pixels(shown_sheet(page), expected_sheet(files, size=64, fit="pad"))

    assert js_errors == [], js_errors
    assert train_app.unexpected_errors() == [], train_app.log_tail()


def test_while_it_trains_real_images_stand_next_to_the_samples(page: Page, step: Step, train_app: AppProcess,  # noqa: F811
                                                               tmp_path: Path, js_errors: list[str]) -> None:
    from playwright.sync_api import expect

    images = write_pngs(tmp_path / "shapes", 12)
    page.set_viewport_size(VIEWPORT)

    with step("upload 12 images; 32 px, 2000 steps, a narrow network, previews every 20 steps"):
        page.get_by_role("tab", name="Train").click()
        expect(page.locator("#train-real")).to_be_hidden()  # nothing to compare before training
        page.locator("#train-files input[type=file]").set_input_files([str(p) for p in images])
        expect(page.locator("#train-intake")).to_contain_text("12 files: 12 usable", timeout=STEP_TIMEOUT_MS)
        page.get_by_role("radio", name="32", exact=True).check()
        page.get_by_role("spinbutton", name="Steps", exact=True).fill("2000")
        page.get_by_role("button", name="Advanced settings").click()
        for label, value in (("Network width", "16"), ("Batch size", "8"), ("Preview every N steps", "20")):
            set_slider(page, label, value)

    with step("start training: real images and samples side by side, the same size"):
        page.evaluate(MARK_OLD_TOASTS)
        page.evaluate(WATCH_PLOTS)
        page.locator("#train-start").click()
        outcome = page.wait_for_function(PROGRESS_OR_ERROR, timeout=RUN_TIMEOUT_MS).json_value()
        assert outcome == "progress", f"no training progress; the page shows {outcome}"
        page.locator("#train-real").scroll_into_view_if_needed()
        for grid in ("#train-real img", "#train-preview img"):
            page.wait_for_function(LOADED, arg=grid, timeout=RUN_TIMEOUT_MS)
        real, fake = (page.evaluate("(s) => { const i = document.querySelector(s); const r = i.getBoundingClientRect();"
                                    " return [i.naturalWidth, i.naturalHeight, r.left, r.top, r.width, r.height]; }", s)
                      for s in ("#train-real img", "#train-preview img"))
        assert real[:2] == fake[:2] == [384, 384], (real, fake)  # 4 x 4 images of 32 px, enlarged alike
        assert real[2] + real[4] <= fake[2] and abs(real[3] - fake[3]) < 2, f"not side by side: {real} {fake}"
        assert abs(real[4] - fake[4]) < 2 and abs(real[5] - fake[5]) < 2, f"shown at different sizes: {real} {fake}"

    with step("the strip of earlier samples grows, one per preview step"):
        strip = page.locator("#train-strip")
        expect(strip.get_by_text(re.compile(r"^step [1-9]\d*$"))).not_to_have_count(0, timeout=RUN_TIMEOUT_MS)
        page.wait_for_function("() => document.querySelectorAll('#train-strip img').length >= 3", timeout=RUN_TIMEOUT_MS)

    with step("the legends name the curves, and the plots never went blank while they updated"):
        page.wait_for_function("() => window.plotWatch.drawn['train-loss-plot'] && window.plotWatch.drawn['train-prob-plot']",
                               timeout=RUN_TIMEOUT_MS)
        before = page.evaluate("() => window.plotWatch.frames")
        page.wait_for_function(f"() => window.plotWatch.frames > {before} + 30", timeout=RUN_TIMEOUT_MS)
        legends = page.evaluate(LEGENDS)
        assert legends["train-loss-plot"] == list(CURVES[:2]) and legends["train-prob-plot"] == list(CURVES[2:]), legends
        assert "curve" not in " ".join(legends["train-loss-plot"] + legends["train-prob-plot"])
        watched = page.evaluate("() => window.plotWatch")
        assert watched["blank"] == [], f"a plot went blank on {len(watched['blank'])} of {watched['frames']} frames"

    with step("press Stop: the samples come as a GIF, kept in the run's previews/ and out of the zip"):
        page.locator("#train-stop").click()
        expect(page.locator("#train-status")).to_contain_text(re.compile(r"Stopped at step \d+|Finished 2000 steps"),
                                                              timeout=RUN_TIMEOUT_MS)
        expect(page.locator(f"#train-gif a[href$='{GIF_NAME}']").first).to_be_attached(timeout=STEP_TIMEOUT_MS)
        run_dir = Path(page.get_by_label("Run folder").input_value())
        with Image.open(run_dir / "previews" / GIF_NAME) as gif:
            assert gif.format == "GIF" and gif.n_frames >= 3 and gif.width == 384
        href = page.locator("a[href$='.zip']").first.get_attribute("href")
        with zipfile.ZipFile(io.BytesIO(page.request.get(href).body())) as zf:
            assert not [n for n in zf.namelist() if "/previews/" in n], zf.namelist()

    assert js_errors == [], js_errors
    assert train_app.unexpected_errors() == [], train_app.log_tail()
