"""What a person clicks and sees: Chromium (Playwright) against ``python app.py`` in a subprocess.

Needs the ``playwright`` package and a Chromium binary ($GANDEMO_CHROMIUM, default /usr/bin/chromium;
``playwright install`` is not needed). Without them the tests skip locally and FAIL when CI=true.
A failing step saves a screenshot and names its path in the assertion message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from app_harness import AppProcess, app  # noqa: F401 - `app` is the shared server fixture
from browser_support import Step, open_page, step_runner
from factories import cryptopunks, state_dict_bytes, unique_repo_id
from hub_server import StandInHub

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.app, pytest.mark.browser, pytest.mark.timeout(180)]

STEP_TIMEOUT_MS = 30_000  # generous: 2 shared CPU cores










@pytest.fixture
def page(browser: Browser, app: AppProcess, js_errors: list[str]) -> Iterator[Page]:  # noqa: F811
    yield from open_page(browser, app.url, js_errors, STEP_TIMEOUT_MS)




@pytest.fixture
def step(page: Page, app: AppProcess, js_errors: list[str], tmp_path_factory: pytest.TempPathFactory) -> Step:  # noqa: F811
    return step_runner(page, app, js_errors, tmp_path_factory, "browser-failure")
def image_loaded(page: Page, selector: str) -> dict[str, Any]:
    """Wait until the <img> under ``selector`` shows a decoded picture; its src and natural size."""
    img = page.locator(f"{selector} img").first
    img.wait_for(state="visible")
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel + ' img');"
        " return i && i.getAttribute('src') && i.complete && i.naturalWidth > 0; }",
        arg=selector,
    )
    return img.evaluate("i => ({src: i.getAttribute('src'), width: i.naturalWidth, height: i.naturalHeight})")


def rendered(page: Page, selector: str) -> dict[str, Any]:
    """How big the picture under ``selector`` is drawn (object-fit: contain inside its box) and how it is scaled."""
    return page.locator(f"{selector} img").first.evaluate(
        "i => { const r = i.getBoundingClientRect(), s = Math.min(r.width / i.naturalWidth, r.height / i.naturalHeight);"
        " return {width: i.naturalWidth * s, height: i.naturalHeight * s,"
        " rendering: getComputedStyle(i).imageRendering}; }")


def expect_text(page: Page, selector: str, pattern: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator(selector)).to_contain_text(re.compile(pattern), timeout=STEP_TIMEOUT_MS)


def test_generate_pick_a_seed_and_interpolate(page: Page, step: Step, js_errors: list[str]) -> None:
    with step("page shows the bundled model"):
        expect_text(page, "#model-info", r"Source: bundled: fashion-mnist")

    with step("generate a 4x4 grid from seed 100"):
        page.get_by_label("Seed", exact=True).fill("100")
        page.locator("#generate-btn").click()
        grid = image_loaded(page, "#sample-grid")
        assert grid["width"] == 512 and grid["height"] == 512, grid  # 4 x 4 cells of 32 px, upscaled 4x
        label = page.locator("#sample-grid [data-testid=block-label]").bounding_box()
        shown = page.locator("#sample-grid img").bounding_box()
        assert label and shown and label["y"] + label["height"] <= shown["y"] + 1, (label, shown)  # not over row 1

    with step("the files to keep are made when asked for: native and upscaled PNG"):
        page.locator("#grid-files-btn").click()
        expect_text(page, "#grid-files", r"seed100_n16\s*\.png")
        expect_text(page, "#grid-files", r"seed100_n16_x6\s*\.png")

    with step("click the cell in row 2, column 3"):
        img = page.locator("#sample-grid img").first
        box = img.bounding_box()
        assert box is not None
        cell_w, cell_h = box["width"] / 4, box["height"] / 4
        img.click(position={"x": 2.5 * cell_w, "y": 1.5 * cell_h})
        # seeds run row by row from 100: row 2, column 3 is 100 + 4 + 2
        page.get_by_text("Picked seed 106 (row 2, column 3)").wait_for()

    with step("use it as seed A and interpolate"):
        page.get_by_role("button", name="Use picked seed as A").click()
        page.get_by_role("tab", name="Interpolate").click()
        seed_a = page.get_by_label("Seed A")
        page.wait_for_function("el => el.value === '106'", arg=seed_a.element_handle())
        page.locator("#interpolate-btn").click()
        strip = image_loaded(page, "#frame-strip")
        animation = image_loaded(page, "#animation")
        assert strip["width"] > strip["height"] > 0, strip
        # both come at native size (24 frames of 32 px: 12 x 2) and are shown enlarged
        assert (strip["width"], strip["height"], animation["width"]) == (384, 64, 32), (strip, animation)
        # enlarged on the page, with crisp pixels
        shown_strip, shown_animation = rendered(page, "#frame-strip"), rendered(page, "#animation")
        assert shown_strip["width"] >= 2 * strip["width"] and shown_animation["height"] >= 200, (shown_strip,
                                                                                                  shown_animation)
        assert {shown_strip["rendering"], shown_animation["rendering"]} <= {"pixelated", "crisp-edges"}
        assert animation["src"].endswith(".gif") and "106-1" in animation["src"], animation
        page.locator("#anim-files-btn").click()
        expect_text(page, "#anim-files", r"_106-1_slerp_24f\s*\.webp")  # GIF, WebP and the native strip

    with step("no JavaScript errors"):
        assert js_errors == []


def test_the_generate_views_show_the_model_when_opened(page: Page, step: Step,
                                                                     js_errors: list[str]) -> None:
    """Opening Generate → Latent vector shows seed 0's vector at once (its first values on the sliders, G(z),
    the chart of all 100 values), a slider steers the image and the change stays when the view is opened again;
    Generate → Scales and → Layers show theirs at once."""
    from playwright.sync_api import expect

    from gandemo.gan.latent import latent_for_seed

    def slider_values() -> list[float]:
        return [float(page.get_by_label(f"number input for z[{i}]", exact=True).input_value()) for i in range(5)]

    with step("page shows the bundled model"):
        expect_text(page, "#model-info", r"Source: bundled: fashion-mnist")

    with step("open Latent vector: seed 0's vector, image and chart, before anything is pressed"):
        page.get_by_role("tab", name="Latent vector").click()
        first = image_loaded(page, "#latent-image")
        chart = image_loaded(page, "#latent-chart")
        assert first["width"] >= 128 and chart["width"] > chart["height"] > 0, (first, chart)
        expect_text(page, "#latent-note", r"100")
        z = latent_for_seed(0, 100)
        page.wait_for_function("() => document.querySelector('#latent-z0 input[type=number]').value !== '0'")
        assert slider_values() == pytest.approx([round(float(z[i]), 2) for i in range(5)], abs=0.006)

    with step("move z[0]: G(z) changes"):
        box = page.get_by_label("number input for z[0]", exact=True)
        box.fill("2.5")
        box.press("Enter")
        box.blur()  # a person's change ends here: the view redraws on release
        expect(page.get_by_label("range slider for z[0]", exact=True)).to_have_value("2.5")
        expect(page.locator("#latent-image img").first).not_to_have_attribute("src", first["src"],
                                                                             timeout=STEP_TIMEOUT_MS)
        steered = image_loaded(page, "#latent-image")["src"]

    with step("Scales says at once why this model has none (a DCGAN draws only its final image)"):
        page.get_by_role("tab", name="Scales").click()
        expect_text(page, "#scales-note", r"Only MSG-GAN models have intermediate scales")

    with step("Layers shows its table at once; back in Latent vector the change is still there"):
        page.get_by_role("tab", name="Layers").click()
        expect_text(page, "#layers-table", r"100 × 1 × 1")
        expect(page.locator("#layers-table table")).to_be_visible()
        page.get_by_role("tab", name="Latent vector").click()
        page.wait_for_timeout(1500)  # time for a redraw, were there one
        assert slider_values()[0] == 2.5
        assert image_loaded(page, "#latent-image")["src"] == steered

    with step("no JavaScript errors"):
        assert js_errors == []


def test_load_a_hub_model_and_see_errors(page: Page, step: Step, js_errors: list[str], hub: StandInHub) -> None:
    repo_id = unique_repo_id("browser-punks")
    hub.add_repo(repo_id, {
        "generator.pth": state_dict_bytes(cryptopunks()),
        "README.md": b"# Punks in the browser\n\nA CryptoPunks-layout replica with random weights.\n",
    })

    with step("page shows the bundled model"):
        expect_text(page, "#model-info", r"Source: bundled: fashion-mnist")

    with step("load a Hub model from the text box"):
        page.get_by_label("Hub repo id or local path").fill(repo_id)
        page.get_by_role("button", name="Load model").click()
        expect_text(page, "#model-info", re.escape(f"Source: Hub: {repo_id}"))
        expect_text(page, "#model-info", r"Punks in the browser")
        expect_text(page, "#model-info", r"24×24 px, 4 channel\(s\), RGBA")

    with step("generate with it"):
        page.locator("#generate-btn").click()
        page.wait_for_function(
            "() => { const i = document.querySelector('#sample-grid img');"
            " return i && i.complete && i.naturalWidth === 480 && i.naturalHeight === 480; }"
        )  # 4 x 4 cells of 24 px, upscaled 5x (the largest factor that fits 512 px)

    with step("a malformed repo id shows an error toast, the model stays"):
        page.get_by_label("Hub repo id or local path").fill("not a repo id!!")
        page.get_by_role("button", name="Load model").click()
        toast = page.locator("[data-testid='toast-body'].error").first
        toast.wait_for(state="visible")
        from playwright.sync_api import expect

        expect(toast).to_contain_text("is not a bundled model")
        expect(toast).to_contain_text("owner/name")
        expect_text(page, "#model-info", re.escape(f"Source: Hub: {repo_id}"))

    with step("no JavaScript errors"):
        assert js_errors == []
