"""The app over real HTTP: every named endpoint, driven with gradio_client against ``python app.py``
running in a subprocess (tests/app_harness.py), with foreign models served by the stand-in Hub."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from app_harness import AppProcess, app  # noqa: F401 - `app` is the shared server fixture
from factories import (
    classifier_state_dict,
    cryptopunks,
    huggan,
    state_dict_bytes,
    torch_save_bytes,
    unique_repo_id,
)
from gradio_client import Client
from gradio_client.exceptions import AppError
from hub_server import StandInHub
from PIL import Image

pytestmark = [pytest.mark.app, pytest.mark.timeout(600)]

BUNDLED = "fashion-mnist"
LINEAR = "A → B"
LOOP = "Loop A → B → A"
WALK = "Latent walk (A, B and random seeds, looping)"
# The Generate tab shows the grid upscaled by the largest integer factor that fits 512 px; the upscaled file
# to keep (/grid_files) fits 768 px.
GRID_DISPLAY_WIDTH = 512
GRID_DOWNLOAD_WIDTH = 768


# ------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def client(app: AppProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:  # noqa: F811
    yield app.client(tmp_path_factory.mktemp("client-downloads"))


def load(path: str | Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    return image


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def generate(client: Client, model: str = BUNDLED, seed: int = 0, num: int = 16, truncation: float = 0) -> dict[str, Any]:
    """/generate (the grid for the screen) and /grid_files (the files to keep) for the same arguments."""
    args = {"model": model, "seed": seed, "num": num, "truncation": truncation}
    shown, info = client.predict(**args, api_name="/generate")
    downloads = client.predict(**args, api_name="/grid_files")
    assert len(downloads) == 2, f"expected a native and an upscaled PNG, got {downloads}"
    native, big = (load(p) for p in downloads)
    return {"shown": load(shown), "native": native, "big": big, "info": info, "paths": downloads, "shown_path": shown}


def interpolate(client: Client, model: str = BUNDLED, seed_a: int = 0, seed_b: int = 1, frames: int = 8,
                method: str = "slerp", mode: str = LINEAR, fps: float = 10, truncation: float = 0) -> dict[str, Any]:
    """/interpolate (strip and GIF for the screen) and /interpolation_files (GIF, WebP, native strip)."""
    args = {"model": model, "seed_a": seed_a, "seed_b": seed_b, "frames": frames, "method": method, "mode": mode,
            "fps": fps, "truncation": truncation}
    strip, animation = client.predict(**args, api_name="/interpolate")
    downloads = client.predict(**args, api_name="/interpolation_files")
    by_suffix = {Path(p).suffix: p for p in downloads}
    assert sorted(by_suffix) == [".gif", ".png", ".webp"], f"expected GIF, WebP and a PNG strip, got {downloads}"
    return {"strip": load(strip), "animation": Image.open(animation), "gif": Image.open(by_suffix[".gif"]),
            "webp": Image.open(by_suffix[".webp"]), "native_strip": load(by_suffix[".png"])}


def cells(grid: Image.Image, size: int, count: int) -> list[np.ndarray]:
    """The first ``count`` size x size cells of a native grid, row by row."""
    arr, cols = pixels(grid), grid.width // size
    return [arr[(i // cols) * size:(i // cols + 1) * size, (i % cols) * size:(i % cols + 1) * size] for i in range(count)]


def assert_is_upscale(shown: Image.Image, native: Image.Image) -> int:
    """``shown`` is ``native`` blown up by an integer nearest-neighbour factor; returns the factor."""
    factor = shown.width // native.width
    assert factor >= 1 and shown.size == (native.width * factor, native.height * factor), (shown.size, native.size)
    assert shown.mode == native.mode, (shown.mode, native.mode)
    expected = native.resize(shown.size, Image.Resampling.NEAREST)
    assert np.array_equal(pixels(shown), pixels(expected)), "the shown grid is not a pixel-exact upscale of the native one"
    return factor


@pytest.fixture
def log_mark(app: AppProcess) -> int:  # noqa: F811
    """Where the app's log stood when the test began."""
    return app.log_mark()


def assert_serves(client: Client, app: AppProcess, since: int) -> None:  # noqa: F811
    """After a bad request: the process lives, answers a good request, and logged no unplanned error
    (a traceback from gandemo.ui.common.human_errors) since log position ``since``."""
    app.assert_alive()
    result = generate(client, num=1, seed=5)
    assert result["native"].size == (32, 32)
    assert app.unexpected_errors(since) == [], app.log_tail()


# ----------------------------------------------------------------------------------- endpoints
def test_named_endpoints_and_their_parameters(client: Client) -> None:
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/generate", "/interpolate", "/load_model"} <= set(endpoints), sorted(endpoints)
    params = {name: [p["parameter_name"] for p in endpoints[name]["parameters"]] for name in endpoints}
    assert params["/generate"] == ["model", "seed", "num", "truncation"]
    assert params["/interpolate"] == ["model", "seed_a", "seed_b", "frames", "method", "mode", "fps", "truncation"]
    assert params["/grid_files"] == params["/generate"]
    assert params["/interpolation_files"] == params["/interpolate"]
    assert params["/load_model"] == ["source"]
    assert not any("lambda" in name or "pick" in name for name in endpoints), "UI-only events leaked into the API"


@pytest.mark.parametrize(
    ("num", "native_size", "factor", "big_factor"),
    [
        (16, (128, 128), 4, 6),  # 4 x 4 cells of 32 px
        (10, (128, 96), 4, 6),  # 4 columns, 3 rows, two empty cells
        (64, (256, 256), 2, 3),  # 8 x 8
        (5, (160, 32), 3, 4),  # up to 8 images sit in one row
    ],
)
def test_generate_grid_sizes_and_downloads(client: Client, num: int, native_size: tuple[int, int], factor: int,
                                           big_factor: int) -> None:
    result = generate(client, seed=3, num=num)
    native, shown, big = result["native"], result["shown"], result["big"]
    assert native.format == "PNG" and big.format == "PNG"
    assert native.size == native_size
    assert assert_is_upscale(shown, native) == factor
    assert shown.width <= GRID_DISPLAY_WIDTH < shown.width + native.width, "not the largest factor that fits"
    assert assert_is_upscale(big, native) == big_factor
    assert big.width <= GRID_DOWNLOAD_WIDTH < big.width + native.width
    assert Path(result["paths"][0]).name.endswith(f"seed3_n{num}.png")
    assert f"_x{big_factor}.png" in Path(result["paths"][1]).name
    assert "Fashion" in result["info"] and "32×32" in result["info"]


def test_generate_one_image(client: Client) -> None:
    result = generate(client, seed=7, num=1)
    assert result["native"].size == (32, 32)
    assert_is_upscale(result["shown"], result["native"])


def test_same_seed_same_pixels_other_seed_other_pixels(client: Client) -> None:
    first, again, other = (generate(client, seed=s, num=4)["native"] for s in (11, 11, 12))
    assert np.array_equal(pixels(first), pixels(again))
    assert not np.array_equal(pixels(first), pixels(other))
    # a grid seeded with S holds seeds S, S+1, ...: the second cell of seed 11 is the first of seed 12
    assert np.array_equal(cells(first, 32, 2)[1], cells(other, 32, 1)[0])


def test_truncation_changes_the_images(client: Client) -> None:
    plain, truncated = (generate(client, seed=2, num=4, truncation=t)["native"] for t in (0, 0.5))
    assert plain.size == truncated.size
    assert not np.array_equal(pixels(plain), pixels(truncated))


def test_grayscale_stays_grayscale(client: Client) -> None:
    result = generate(client, seed=0, num=4)
    assert {result[k].mode for k in ("native", "shown", "big")} == {"L"}


# --------------------------------------------------------------------------------- interpolate
def test_interpolate_strip_gif_and_webp(client: Client) -> None:
    frames = 8
    result = interpolate(client, seed_a=4, seed_b=9, frames=frames, fps=10)
    native = result["native_strip"]
    assert native.size == (frames * 32, 32) and native.mode == "L"
    assert assert_is_upscale(result["strip"], native) == 1, "the strip for the screen is the native strip"
    for key in ("animation", "gif", "webp"):
        anim = result[key]
        assert anim.n_frames == frames, f"{key}: {anim.n_frames} frames"
    # the screen's GIF is native (the page enlarges it); the files to keep are enlarged to 256 px
    assert result["animation"].size == (32, 32)
    assert result["gif"].size == result["webp"].size == (256, 256)
    assert result["animation"].format == "GIF" and result["webp"].format == "WEBP"
    assert result["gif"].info.get("duration") == 100  # 10 fps
    # the path starts at seed A and ends at seed B
    seed_a, seed_b = (generate(client, seed=s, num=1)["native"] for s in (4, 9))
    strip = cells(native, 32, frames)
    assert np.abs(strip[0] - pixels(seed_a)).max() <= 1
    assert np.abs(strip[-1] - pixels(seed_b)).max() <= 1
    assert not np.array_equal(strip[0], strip[frames // 2])


def test_repeating_a_request_never_cuts_off_a_download_in_flight(app: AppProcess) -> None:  # noqa: F811
    """The same request made again must not rewrite the picture a client may still be fetching.
    Gradio rewrites its cached copy of a PIL output in place each time the same picture comes out
    again; a download racing that rewrite got a cut-off body ("peer closed connection", seen in CI).
    So a reader fetches the first answer's strip in a loop while the request is repeated."""
    raw = Client(app.url, download_files=False, verbose=False)
    args = dict(model=BUNDLED, seed_a=3, seed_b=5, frames=48, method="lerp", mode=LINEAR, fps=10, truncation=0,
                api_name="/interpolate")
    url = raw.predict(**args)[0]["url"]
    expected = httpx.get(url, timeout=30).content
    assert expected[:8] == b"\x89PNG\r\n\x1a\n"
    problems: list[str] = []
    done = threading.Event()

    def reader() -> None:
        with httpx.Client(timeout=30) as http:
            while not done.is_set():
                try:
                    body = http.get(url).content
                except httpx.HTTPError as e:
                    problems.append(repr(e))
                    continue
                if body != expected:
                    problems.append(f"got {len(body)} bytes, expected the same {len(expected)} bytes")

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        for _ in range(12):
            assert raw.predict(**args)[0]["url"] == url  # the same picture maps to the same cached file
    finally:
        done.set()
        thread.join(30)
    assert problems == [], problems[:5]


def test_interpolate_loop_returns_to_a(client: Client) -> None:
    frames = 6
    result = interpolate(client, seed_a=4, seed_b=9, frames=frames, mode=LOOP)
    assert result["gif"].n_frames == frames and result["webp"].n_frames == frames
    strip = cells(result["native_strip"], 32, frames)
    seed_a, seed_b = (generate(client, seed=s, num=1)["native"] for s in (4, 9))
    # A at frame 0, B half way; the last frame leads back to A without repeating it
    assert np.abs(strip[0] - pixels(seed_a)).max() <= 1
    assert np.abs(strip[frames // 2] - pixels(seed_b)).max() <= 1
    assert np.abs(strip[-1] - pixels(seed_a)).max() > 1


def test_interpolate_latent_walk(client: Client) -> None:
    frames = 8
    walk = interpolate(client, seed_a=4, seed_b=9, frames=frames, mode=WALK)
    assert walk["gif"].n_frames == frames and walk["webp"].n_frames == frames
    strip = cells(walk["native_strip"], 32, frames)
    seed_a = generate(client, seed=4, num=1)["native"]
    assert np.abs(strip[0] - pixels(seed_a)).max() <= 1
    # four waypoints (A, B and two random seeds) in a loop: every frame differs from its neighbour
    assert all(not np.array_equal(strip[i], strip[(i + 1) % frames]) for i in range(frames))


# ----------------------------------------------------------------------------- other models
@pytest.fixture(scope="module")
def punks_repo(hub: StandInHub) -> str:
    repo_id = unique_repo_id("cryptopunks-replica")
    card = b"# CryptoPunks replica\n\nRandom weights in the nateraw/cryptopunks-gan layout.\n"
    hub.add_repo(repo_id, {"generator.pth": state_dict_bytes(cryptopunks()), "README.md": card})
    return repo_id


@pytest.fixture(scope="module")
def huggan_repo(hub: StandInHub) -> str:
    repo_id = unique_repo_id("huggan-replica")
    hub.add_repo(repo_id, {"pytorch_model.bin": state_dict_bytes(huggan(num_channels=3))})
    return repo_id


def test_load_and_generate_with_an_rgba_hub_model(client: Client, punks_repo: str) -> None:
    picker, info = client.predict(source=punks_repo, api_name="/load_model")
    # the picker comes back as a Gradio update: the loaded repo is selected and offered as a choice
    assert picker["value"] == punks_repo
    assert [punks_repo, punks_repo] in picker["choices"] and [BUNDLED, BUNDLED] in picker["choices"]
    assert "CryptoPunks replica" in info and "24×24" in info and "RGBA" in info and "cryptopunks-gan" in info
    result = generate(client, model=punks_repo, seed=0, num=4)
    native = result["native"]
    assert native.size == (4 * 24, 24) and native.mode == "RGBA"
    assert_is_upscale(result["shown"], native)
    alpha = np.asarray(native.getchannel("A"))
    assert alpha.min() < 255, "an RGBA model's samples should have some transparency"
    assert result["shown"].mode == "RGBA" and np.asarray(result["shown"].getchannel("A")).min() < 255
    anim = interpolate(client, model=punks_repo, frames=4)
    assert anim["native_strip"].mode == "RGBA" and anim["webp"].n_frames == 4


def test_generate_with_an_rgb_hub_model(client: Client, huggan_repo: str) -> None:
    _, info = client.predict(source=huggan_repo, api_name="/load_model")
    assert "64×64" in info and "RGB" in info and "huggan-dcgan" in info
    result = generate(client, model=huggan_repo, seed=0, num=4)
    assert result["native"].size == (4 * 64, 64) and result["native"].mode == "RGB"
    assert result["shown"].mode == "RGB"


# --------------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def no_generator_repos(hub: StandInHub) -> dict[str, str]:
    empty = unique_repo_id("no-weights")
    hub.add_repo(empty, {"README.md": b"# Just a card\n", "notes.txt": b"nothing here"})
    classifier = unique_repo_id("classifier")
    hub.add_repo(classifier, {"pytorch_model.bin": torch_save_bytes(classifier_state_dict())})
    return {"empty": empty, "classifier": classifier}


def test_malformed_repo_id(client: Client, app: AppProcess, log_mark: int) -> None:  # noqa: F811
    with pytest.raises(AppError, match=re.escape("Hub repo id like 'owner/name'")) as info:
        client.predict(source="not a repo id!!", api_name="/load_model")
    assert "not a repo id!!" in str(info.value)
    assert_serves(client, app, log_mark)


def test_missing_repo(client: Client, app: AppProcess, log_mark: int) -> None:  # noqa: F811
    missing = unique_repo_id("does-not-exist")
    with pytest.raises(AppError, match=re.escape(f"No model repo '{missing}' on the Hub")):
        client.predict(source=missing, api_name="/load_model")
    assert_serves(client, app, log_mark)


def test_repo_without_a_generator(
    client: Client, app: AppProcess, log_mark: int, no_generator_repos: dict[str, str]  # noqa: F811
) -> None:
    with pytest.raises(AppError, match="holds no generator weights: found README.md, notes.txt"):
        client.predict(source=no_generator_repos["empty"], api_name="/load_model")
    with pytest.raises(AppError, match="not a generator layout gandemo knows"):
        client.predict(source=no_generator_repos["classifier"], api_name="/load_model")
    # /generate with such a model says the same, it does not fail differently
    with pytest.raises(AppError, match="holds no generator weights"):
        client.predict(model=no_generator_repos["empty"], seed=0, num=1, truncation=0, api_name="/generate")
    assert_serves(client, app, log_mark)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num": 1000}, "greater than maximum value 64"),
        ({"num": 0}, "less than minimum value 1"),
        ({"seed": -1}, "less than minimum value 0"),
        ({"truncation": 7}, "greater than maximum value 3"),
        ({"model": ""}, "No model given"),
    ],
    ids=["num=1000", "num=0", "seed=-1", "truncation=7", "no-model"],
)
def test_generate_bad_input(
    client: Client, app: AppProcess, log_mark: int, kwargs: dict[str, Any], message: str  # noqa: F811
) -> None:
    args = {"model": BUNDLED, "seed": 0, "num": 4, "truncation": 0, **kwargs}
    with pytest.raises(AppError, match=re.escape(message)):
        client.predict(**args, api_name="/generate")
    assert_serves(client, app, log_mark)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frames": 0}, "less than minimum value 2"),
        ({"frames": 500}, "greater than maximum value 120"),
        ({"mode": "sideways"}, "sideways"),
        ({"method": "cubic"}, "cubic"),
    ],
    ids=["frames=0", "frames=500", "bad-mode", "bad-method"],
)
def test_interpolate_bad_input(
    client: Client, app: AppProcess, log_mark: int, kwargs: dict[str, Any], message: str  # noqa: F811
) -> None:
    args = {"model": BUNDLED, "seed_a": 0, "seed_b": 1, "frames": 4, "method": "slerp", "mode": LINEAR, "fps": 12,
            "truncation": 0, **kwargs}
    with pytest.raises(AppError, match=re.escape(message)) as info:
        client.predict(**args, api_name="/interpolate")
    assert "Something went wrong" not in str(info.value)
    assert_serves(client, app, log_mark)


def test_empty_seed_is_a_human_error(client: Client, app: AppProcess, log_mark: int) -> None:  # noqa: F811
    with pytest.raises(AppError, match="must be a whole number"):
        client.predict(model=BUNDLED, seed=None, num=4, truncation=0, api_name="/generate")
    with pytest.raises(AppError, match="must be a whole number"):
        client.predict(model=BUNDLED, seed_a=None, seed_b=1, frames=4, method="slerp", mode=LINEAR, fps=12,
                       truncation=0, api_name="/interpolate")
    assert_serves(client, app, log_mark)
