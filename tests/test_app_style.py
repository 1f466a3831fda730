"""The Style transfer tab over real HTTP: gradio_client drives ``/stylize`` (streamed) and ``/stop_style``
against ``python app.py`` in a subprocess.

VGG19 comes the way it does for a visitor: the app downloads ``model.safetensors`` of
``timm/vgg19.tv_in1k`` with ``hf_hub_download``, here from the session's stand-in Hub, which serves random
weights in timm's layout (the same bytes tests/test_style.py serves). GANDEMO_VGG_WEIGHTS is unset.

The app is its own subprocess (tests/app_harness.py ``running_app``) with one intra-op thread
(OMP_NUM_THREADS=1), its own Hugging Face cache, output and runs folders in a temporary folder.
The app (``SHARED_STYLE_APP``) is shared with tests/test_browser_style.py, reference-counted like the
harness's app.
Images are at most 96 px and runs a few steps, except the Stop test, which is stopped after one step.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from app_harness import AppProcess, SharedApp, single_thread_env
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from hub_server import StandInHub
from PIL import Image
from safetensors.torch import save

from gandemo.style.vgg import DEFAULT_VGG_REPO, VGG_FILENAME, random_vgg19_state_dict

pytestmark = [pytest.mark.app, pytest.mark.timeout(240)]

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples" / "style"
CONTENT = EXAMPLES / "content_house.jpg"  # 512 x 384
STYLE = EXAMPLES / "style_waves.jpg"
STYLE_2 = EXAMPLES / "style_brush_strokes.jpg"
OUTPUTS = ("image", "losses", "status", "download")
STREAM_TIMEOUT_S = 120.0
STOP_WITHIN_S = 10.0  # one network pass at 256 px takes well under a second; the machine is shared and busy


# ------------------------------------------------------------------------------------ the app
def serve_random_vgg19(hub: StandInHub) -> None:
    """Random VGG19 weights as ``timm/vgg19.tv_in1k`` on the stand-in Hub, unless a test module already
    put them there (the Hub lives for the whole session; tests/test_style.py adds the same bytes)."""
    if DEFAULT_VGG_REPO not in hub.repo_ids():
        weights = save(random_vgg19_state_dict(seed=0, with_classifier=True))
        hub.add_repo(DEFAULT_VGG_REPO, {VGG_FILENAME: weights, "config.json": b'{"architecture": "vgg19"}'})


def _style_env(workdir: Path) -> dict[str, str]:
    env = {
        **single_thread_env(workdir),  # the stand-in Hub (tests/conftest.py) ...
        # ... with a cache of its own: the app downloads VGG19 itself, whatever other tests cached
        "HF_HOME": str(workdir / "hf"),
        "HF_HUB_CACHE": str(workdir / "hf" / "hub"),
        "GANDEMO_RUNS_DIR": str(workdir / "runs"),
    }
    for name in ("GANDEMO_VGG_WEIGHTS", "GANDEMO_VGG_REPO", "HF_HUB_OFFLINE"):
        env.pop(name, None)
    return env


class _StyleApp(SharedApp):
    """The shared style app; remembers where the Hub's request log stood when it started."""

    hub_mark = 0

    def acquire_with(self, hub: StandInHub) -> AppProcess:
        def prepare() -> None:
            serve_random_vgg19(hub)
            self.hub_mark = hub.mark()

        return self.acquire(prepare)


SHARED_STYLE_APP = _StyleApp("gandemo-style-app-", _style_env)


@pytest.fixture(scope="session")
def style_app(hub: StandInHub) -> Iterator[AppProcess]:
    """``python app.py`` that loads VGG19 from the stand-in Hub, shared by the style app tests."""
    app = SHARED_STYLE_APP.acquire_with(hub)
    try:
        yield app
    finally:
        SHARED_STYLE_APP.release()


@pytest.fixture(scope="module")
def client(style_app: AppProcess, tmp_path_factory: pytest.TempPathFactory) -> Client:
    return style_app.client(tmp_path_factory.mktemp("style-client"))


@pytest.fixture
def log_mark(style_app: AppProcess) -> int:
    return style_app.log_mark()


# ------------------------------------------------------------------------------------ helpers
def gallery(*paths: Path) -> list[dict[str, Any]]:
    """Style images as the Gallery input takes them over the API."""
    return [{"image": handle_file(str(p)), "caption": None} for p in paths]


def stylize_args(content: Path | None = CONTENT, styles: tuple[Path, ...] | None = (STYLE,),
                 **overrides: Any) -> dict[str, Any]:
    """Every /stylize input by name; tiny by default (96 px, 4 L-BFGS steps). None sends an empty input."""
    args: dict[str, Any] = dict(
        content=handle_file(str(content)) if content is not None else None,
        styles=gallery(*styles) if styles is not None else None,
        content_weight_log10=0, style_weight_log10=1.7, tv_weight_log10=0.7, steps=4, size=96, optimizer="lbfgs",
        init="content", preserve_colors=False, multiscale=False, style_blend="", style_scale=1, pooling="max",
    )
    args.update(overrides)
    return args


def named(outputs: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    assert len(outputs) == len(OUTPUTS), f"/stylize should stream {len(OUTPUTS)} outputs, got {outputs!r}"
    return dict(zip(OUTPUTS, outputs))


def stream(client: Client, **args: Any) -> list[dict[str, Any]]:
    """Every update /stylize streams, the final one last."""
    job = client.submit(**args, api_name="/stylize")
    deadline = time.monotonic() + STREAM_TIMEOUT_S
    seen: list[dict[str, Any]] = []
    for outputs in job:
        seen.append(named(outputs))
        assert time.monotonic() < deadline, f"/stylize still streaming after {STREAM_TIMEOUT_S} s: {seen[-1]['status']}"
    final = named(job.result())  # raises AppError with the app's message when the run failed
    if not seen or seen[-1] != final:
        seen.append(final)
    return seen


def load(path: str | Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    return image


def assert_done(final: dict[str, Any], size: int, aspect: float) -> Image.Image:
    """The last update: status Done, the result shown, and a PNG download with long side ``size``."""
    assert "Done" in final["status"], final["status"]
    assert final["download"], f"no download in the final update: {final}"
    download = load(final["download"])
    assert download.format == "PNG" and Path(final["download"]).suffix == ".png", final["download"]
    assert download.mode == "RGB", download.mode
    assert max(download.size) == size, download.size
    assert abs(download.width / download.height - aspect) < 0.03, (download.size, aspect)
    assert final["image"], "no result image in the final update"
    assert load(final["image"]).size == download.size
    return download


def aspect_of(path: Path) -> float:
    with Image.open(path) as image:
        return image.width / image.height


def assert_serves(client: Client, app: AppProcess, since: int) -> None:
    """After a bad request: the process lives, a good request works, and no unplanned error (a
    traceback from gandemo.ui.common.human_errors) was logged since log position ``since``."""
    app.assert_alive()
    final = stream(client, **stylize_args(steps=1, size=64))[-1]
    assert_done(final, 64, aspect_of(CONTENT))
    assert app.unexpected_errors(since) == [], app.log_tail()


# ------------------------------------------------------------------------------ good requests
def test_endpoints_and_their_parameters(client: Client) -> None:
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/stylize", "/stop_style"} <= set(endpoints), sorted(endpoints)
    params = [p["parameter_name"] for p in endpoints["/stylize"]["parameters"]]
    assert params == ["content", "styles", "content_weight_log10", "style_weight_log10", "tv_weight_log10", "steps",
                      "size", "optimizer", "init", "preserve_colors", "multiscale", "style_blend", "style_scale",
                      "pooling"]
    assert endpoints["/stop_style"]["parameters"] == []


def test_stylize_streams_progress_then_a_png(client: Client, style_app: AppProcess, hub: StandInHub) -> None:
    seen = stream(client, **stylize_args(steps=5, size=96))
    final, updates = seen[-1], seen[:-1]
    assert_done(final, 96, aspect_of(CONTENT))
    assert (load(final["download"]).size) == (96, 72)  # 512 x 384 content, long side 96

    # before the final update: progress, a growing loss table, no download yet
    with_losses = [u for u in updates if u["losses"] and u["losses"].get("data")]
    assert with_losses, f"no intermediate update carried a loss table: {[u['status'] for u in updates]}"
    assert all(u["download"] is None for u in updates), "a download was offered before the run finished"
    assert any(re.search(r"step [1-9]\d*/5", u["status"]) for u in updates), [u["status"] for u in updates]
    table = with_losses[-1]["losses"]
    assert table["columns"] == ["step", "term", "log10 loss"], table["columns"]
    rows = table["data"]
    assert {term for _, term, _ in rows} >= {"style", "variation"}, rows
    assert all(np.isfinite(loss) for _, _, loss in rows), rows  # log10 of positive losses
    assert max(step for step, _, _ in rows) >= 1
    assert "Final losses" in final["status"] and "96×72 px" in final["status"], final["status"]

    # VGG19 came through hf_hub_download from the stand-in Hub into the app's own Hugging Face cache
    assert VGG_FILENAME in hub.files_fetched(DEFAULT_VGG_REPO, since=SHARED_STYLE_APP.hub_mark)
    cached = list((style_app.workdir / "hf" / "hub").glob(f"models--timm--vgg19.tv_in1k/snapshots/*/{VGG_FILENAME}"))
    assert cached, f"VGG19 is not in the app's HF cache under {style_app.workdir / 'hf'}"
    assert style_app.unexpected_errors() == [], style_app.log_tail()


def test_two_styles_with_a_blend(client: Client) -> None:
    final = stream(client, **stylize_args(styles=(STYLE, STYLE_2), style_blend="1, 0.5", steps=3, size=64))[-1]
    assert_done(final, 64, aspect_of(CONTENT))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L"])
def test_transparent_and_grayscale_inputs(client: Client, tmp_path: Path, mode: str) -> None:
    """RGBA and grayscale (with and without alpha) as content and as style; the result is RGB."""
    rng = np.random.default_rng(0)
    content = Image.fromarray(rng.integers(0, 255, (60, 90, 4), dtype=np.uint8), "RGBA")
    content.putalpha(Image.linear_gradient("L").resize((90, 60)))  # from opaque to fully transparent
    style = Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8), "RGB")
    content_path, style_path = tmp_path / f"content_{mode}.png", tmp_path / f"style_{mode}.png"
    content.convert(mode).save(content_path)
    style.convert(mode if mode != "LA" else "L").save(style_path)
    final = stream(client, **stylize_args(content=content_path, styles=(style_path,), steps=2, size=64))[-1]
    result = assert_done(final, 64, 90 / 60)
    assert result.size == (64, 43)


def test_content_off_with_the_smallest_style_weight(client: Client) -> None:
    """The nearest the sliders get to 'all weights off': content and variation off (-3), style at its
    minimum (-2, i.e. 0.01). Style is never 0 through the UI, so the core's 'both weights are 0' error
    cannot be reached from here; this must simply run."""
    final = stream(client, **stylize_args(content_weight_log10=-3, style_weight_log10=-2, tv_weight_log10=-3,
                                          steps=2, size=64))[-1]
    assert_done(final, 64, aspect_of(CONTENT))
    assert "content 0," in final["status"] and "variation 0." in final["status"], final["status"]


# ------------------------------------------------------------------------------------ stopping
def test_stop_ends_a_long_run_with_the_image_so_far(client: Client, style_app: AppProcess) -> None:
    assert client.predict(api_name="/stop_style") == "Nothing is running."
    job = client.submit(**stylize_args(steps=300, size=256), api_name="/stylize")
    deadline = time.monotonic() + STREAM_TIMEOUT_S
    updates: list[dict[str, Any]] = []
    for outputs in job:
        updates.append(named(outputs))
        if updates[-1]["losses"] and updates[-1]["losses"].get("data"):
            break  # a step has been taken
        assert time.monotonic() < deadline, f"no step within {STREAM_TIMEOUT_S} s: {updates[-1]['status']}"
    else:
        pytest.fail(f"/stylize ended before its first step: {updates[-1] if updates else job.status()}\n"
                    f"{style_app.log_tail()}")

    asked = time.monotonic()
    assert client.predict(api_name="/stop_style") == "Stopping…"
    for outputs in job:
        updates.append(named(outputs))
        assert time.monotonic() - asked < STOP_WITHIN_S, f"still running {STOP_WITHIN_S} s after Stop"
    final = named(job.outputs()[-1])
    took = time.monotonic() - asked
    assert took < STOP_WITHIN_S, f"the run ended {took:.1f} s after Stop"
    assert "Stopped" in final["status"], final["status"]
    steps_done = max(step for step, _, _ in final["losses"]["data"])
    assert 1 <= steps_done < 300, steps_done
    partial = load(final["download"])
    assert Path(final["download"]).name == "stylized_partial.png", final["download"]
    assert partial.format == "PNG" and partial.size == (256, 192), partial.size
    assert client.predict(api_name="/stop_style") == "Nothing is running."
    assert style_app.unexpected_errors() == [], style_app.log_tail()


# ---------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"content": None}, "Add a content image first."),
        ({"styles": ()}, "Add at least one style image."),
        ({"styles": None}, "Add at least one style image."),
        ({"steps": 0}, "Value 0 is less than minimum value 1."),
        ({"size": 32}, "Value 32 is less than minimum value 64."),
        ({"style_weight_log10": -3, "content_weight_log10": -3}, "Value -3 is less than minimum value -2."),
        ({"styles": (STYLE, STYLE_2), "style_blend": "1"},
         "Give one blend weight per style image: 2 style image(s), 1 weight(s)."),
        ({"style_blend": "strong"}, "Style blend must be numbers separated by commas, like '1, 0.5'; got 'strong'."),
        ({"styles": (STYLE, STYLE_2), "style_blend": "0, 0"}, "The style blend weights are all 0"),
        ({"optimizer": "sgd"}, "sgd"),
    ],
    ids=["no-content", "no-styles", "styles-None", "steps=0", "size=32", "style-weight-off", "blend-too-short",
         "blend-not-numbers", "blend-all-zero", "bad-optimizer"],
)
def test_bad_input_is_explained(client: Client, style_app: AppProcess, log_mark: int, overrides: dict[str, Any],
                                message: str) -> None:
    with pytest.raises(AppError, match=re.escape(message)) as info:
        stream(client, **stylize_args(**overrides))
    assert "Something went wrong" not in str(info.value)
    assert_serves(client, style_app, log_mark)


@pytest.fixture
def text_file_named_png(tmp_path: Path) -> Path:
    path = tmp_path / "notes.png"
    path.write_text("These are my notes, not a picture.\n")
    return path


def test_a_text_file_as_style_is_explained(client: Client, style_app: AppProcess, log_mark: int,
                                           text_file_named_png: Path) -> None:
    with pytest.raises(AppError, match=r"The style image notes\.png is not an image that can be read"):
        stream(client, **stylize_args(styles=(text_file_named_png,)))
    assert_serves(client, style_app, log_mark)


def test_a_text_file_as_content_is_refused_and_the_app_goes_on(client: Client, style_app: AppProcess, log_mark: int,
                                                              text_file_named_png: Path) -> None:
    with pytest.raises(AppError):
        stream(client, **stylize_args(content=text_file_named_png))
    assert_serves(client, style_app, log_mark)


def test_a_text_file_as_content_is_explained(client: Client, text_file_named_png: Path) -> None:
    with pytest.raises(AppError) as info:
        stream(client, **stylize_args(content=text_file_named_png))
    message = str(info.value)
    assert "Could not preprocess" not in message, message
    assert re.search(r"content image notes\.png is not an image that can be read", message), message
