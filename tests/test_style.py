"""Style transfer core (gandemo.style) and its CLI, on random VGG19 weights served by the stand-in Hub.

The weights are randomly initialised (kaiming, so activations keep their scale through 16 layers) and
written once per session in timm's ``vgg19.tv_in1k`` layout, with two classifier stand-ins the loader
must ignore. The stand-in Hub serves them as ``timm/vgg19.tv_in1k``, so the real ``hf_hub_download``
path runs. Images are 32-64 px and runs a few steps, on one CPU thread.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save, save_file

from gandemo.errors import InvalidInputError, SourceError, UnsafeCheckpointError, UnsupportedCheckpointError
from gandemo.style import StyleSettings, gram_matrix, load_image, load_vgg19, stylize, vgg_weights_path
from gandemo.style.inputs import rgb_to_yiq
from gandemo.style.vgg import DEFAULT_VGG_REPO, VGG_FILENAME, random_vgg19_state_dict

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples" / "style"
SMALL = {"size": 48, "steps": 12, "preview_every": 4}


# ----------------------------------------------------------------------------- fixtures


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def no_local_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GANDEMO_VGG_WEIGHTS", raising=False)
    monkeypatch.delenv("GANDEMO_VGG_REPO", raising=False)


@pytest.fixture(scope="session")
def vgg_state() -> dict[str, torch.Tensor]:
    return random_vgg19_state_dict(seed=0, with_classifier=True)


@pytest.fixture(scope="session")
def vgg_bytes(vgg_state: dict[str, torch.Tensor]) -> bytes:
    return save(vgg_state)


@pytest.fixture(scope="session")
def vgg_file(tmp_path_factory: pytest.TempPathFactory, vgg_bytes: bytes) -> Path:
    path = tmp_path_factory.mktemp("vgg") / "vgg19_random.safetensors"
    path.write_bytes(vgg_bytes)
    return path


@pytest.fixture(scope="session")
def vgg_on_hub(hub, vgg_bytes: bytes) -> str:  # noqa: ANN001 - hub_server.StandInHub
    hub.add_repo(DEFAULT_VGG_REPO, {VGG_FILENAME: vgg_bytes, "config.json": b'{"architecture": "vgg19"}'})
    return DEFAULT_VGG_REPO


@pytest.fixture(scope="module")
def vgg(vgg_on_hub: str):  # noqa: ANN201 - VGGFeatures, loaded once through the Hub path
    return load_vgg19()


def picture(w: int, h: int, seed: int, mode: str = "RGB") -> Image.Image:
    """Smooth random colour blobs plus a little texture: something with both content and style."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, size=(4, 4, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float64)
    base += rng.normal(0, 12, size=base.shape)
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    return image.convert(mode) if mode != "RGB" else image


@pytest.fixture(scope="module")
def content() -> Image.Image:
    return picture(48, 36, seed=1)


@pytest.fixture(scope="module")
def style() -> Image.Image:
    return picture(40, 40, seed=2)


def run(content: Image.Image, styles: list, vgg, **settings):  # noqa: ANN001, ANN201
    """All events of a run (tiny defaults), on the CPU."""
    return list(stylize(content, styles, StyleSettings(**{**SMALL, **settings}), device="cpu", vgg=vgg))


# ----------------------------------------------------------------------------- weights


def test_weights_come_from_the_hub_repo_into_the_hf_cache(hub, vgg_on_hub: str, vgg_bytes: bytes) -> None:  # noqa: ANN001
    path = vgg_weights_path()
    assert path.read_bytes() == vgg_bytes
    assert "models--timm--vgg19.tv_in1k" in str(path)  # the standard HF cache layout
    assert VGG_FILENAME in hub.files_fetched(DEFAULT_VGG_REPO)
    model = load_vgg19(last_layer="relu5_1")
    # torchvision's indices, cut after relu5_1 (index 29): 13 of the 16 convolutions
    keys = sorted(model.state_dict())
    assert "features.0.weight" in keys and "features.28.weight" in keys and "features.30.weight" not in keys
    assert not any(k.startswith(("pre_logits", "head", "classifier")) for k in keys)


def test_loaded_features_match_the_file(vgg, vgg_state: dict[str, torch.Tensor]) -> None:  # noqa: ANN001
    for key, value in vgg.state_dict().items():
        assert torch.equal(value, vgg_state[key]), key


def test_features_keep_their_scale_and_layers_are_named(vgg) -> None:  # noqa: ANN001
    x = torch.rand(1, 3, 64, 64)
    feats = vgg(x, ["relu1_1", "relu3_1", "relu5_1", "conv4_2"])
    assert feats["relu1_1"].shape == (1, 64, 64, 64)
    assert feats["relu3_1"].shape == (1, 256, 16, 16)
    assert feats["relu5_1"].shape == (1, 512, 4, 4)
    for f in feats.values():  # neither vanished nor exploded
        assert 1e-3 < f.abs().mean().item() < 1e3
    assert (feats["conv4_2"] < 0).any(), "a conv output must be taken before its in-place ReLU"
    g = gram_matrix(feats["relu3_1"])
    assert g.shape == (1, 256, 256) and torch.allclose(g, g.transpose(1, 2), atol=1e-5)


def test_gram_matrix_does_not_depend_on_image_size() -> None:
    tile = torch.rand(1, 8, 4, 4)
    assert torch.allclose(gram_matrix(tile), gram_matrix(tile.repeat(1, 1, 8, 8)), atol=1e-6)
    cl = tile.repeat(1, 1, 3, 5).contiguous(memory_format=torch.channels_last)
    assert torch.allclose(gram_matrix(cl), gram_matrix(cl.contiguous()), atol=1e-6)


def test_local_file_via_environment_variable(monkeypatch: pytest.MonkeyPatch, vgg_file: Path) -> None:
    monkeypatch.setenv("GANDEMO_VGG_WEIGHTS", str(vgg_file))
    assert vgg_weights_path() == vgg_file
    monkeypatch.setenv("GANDEMO_VGG_WEIGHTS", str(vgg_file.with_name("missing.safetensors")))
    with pytest.raises(SourceError, match="does not exist"):
        vgg_weights_path()


def test_torchvision_pth_loads_with_weights_only(tmp_path: Path, vgg_state: dict[str, torch.Tensor]) -> None:
    tv = {k: v for k, v in vgg_state.items() if k.startswith("features.")}
    tv.update({"classifier.0.weight": torch.zeros(4, 8), "classifier.0.bias": torch.zeros(4),
               "classifier.6.weight": torch.zeros(10, 4), "classifier.6.bias": torch.zeros(10)})
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(tv, path)
    model = load_vgg19(path, last_layer="relu4_2")
    assert torch.equal(model.features[21].weight, vgg_state["features.21.weight"])
    assert len(model.features) == 23  # truncated after relu4_2

    class Payload:
        def __reduce__(self):  # noqa: ANN204
            return (print, ("this must never run",))

    evil = tmp_path / "evil.pth"
    torch.save({"features.0.weight": Payload()}, evil)
    with pytest.raises(UnsafeCheckpointError, match="Refused"):
        load_vgg19(evil)


def test_wrong_layouts_are_named(tmp_path: Path, vgg_state: dict[str, torch.Tensor]) -> None:
    bn_like = dict(vgg_state)
    bn_like["features.2.weight"] = torch.ones(64)  # vgg19_bn: index 2 is a conv only without batch norm
    save_file(bn_like, tmp_path / "bn.safetensors")
    with pytest.raises(UnsupportedCheckpointError, match=r"features.2.weight.*shape"):
        load_vgg19(tmp_path / "bn.safetensors")
    short = {k: v for k, v in vgg_state.items() if k in ("features.0.weight", "features.0.bias")}
    save_file(short, tmp_path / "short.safetensors")
    with pytest.raises(UnsupportedCheckpointError, match="features.2.weight"):
        load_vgg19(tmp_path / "short.safetensors")
    save_file({"encoder.weight": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(UnsupportedCheckpointError, match="does not look like VGG19"):
        load_vgg19(tmp_path / "other.safetensors")


def test_offline_and_not_cached_says_so(run_python, tmp_path: Path) -> None:  # noqa: ANN001
    empty = tmp_path / "empty-hf-home"
    code = (
        "from gandemo.style.vgg import vgg_weights_path\n"
        "from gandemo.errors import SourceError\n"
        "try:\n    vgg_weights_path()\nexcept SourceError as e:\n    print(e)\nelse:\n    print('NO ERROR')\n"
    )
    proc = run_python(code, env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(empty), "HF_HUB_CACHE": str(empty / "hub"),
                                 "GANDEMO_VGG_WEIGHTS": None, "GANDEMO_VGG_REPO": None})
    message = proc.stdout.strip()
    assert "not in the local Hugging Face cache" in message, message
    assert "offline mode is on" in message and "--vgg-weights" in message and "GANDEMO_VGG_WEIGHTS" in message


# ----------------------------------------------------------------------------- the optimisation


def test_events_and_falling_loss(vgg, content: Image.Image, style: Image.Image) -> None:  # noqa: ANN001
    events = run(content, [style], vgg, steps=12, preview_every=4)
    first, steps, last = events[0], [e for e in events if e.step and not e.done], events[-1]
    assert first.step == 0 and first.total_steps == 12 and first.message.startswith("Preparing")
    assert [e.step for e in steps] == list(range(1, 13))
    assert [e.step for e in steps if e.preview is not None] == [4, 8, 12]
    assert last.done and not last.cancelled and last.image is not None and last.image.mode == "RGB"
    assert last.image.size == (48, 36) and last.preview is last.image and last.progress == 1.0
    assert last.total_loss < 0.5 * steps[0].total_loss
    assert all(np.isfinite([e.content_loss, e.style_loss, e.tv_loss, e.total_loss]).all() for e in steps)


def test_higher_style_weight_gives_lower_style_loss(vgg, content, style) -> None:  # noqa: ANN001
    low = run(content, [style], vgg, style_weight=1.0, tv_weight=0.0)[-1]
    high = run(content, [style], vgg, style_weight=200.0, tv_weight=0.0)[-1]
    assert high.style_loss < 0.7 * low.style_loss, (low.style_loss, high.style_loss)


def test_higher_tv_weight_gives_smoother_output(vgg, content, style) -> None:  # noqa: ANN001
    rough = run(content, [style], vgg, tv_weight=0.0)[-1]
    smooth = run(content, [style], vgg, tv_weight=200.0)[-1]
    assert smooth.tv_loss < 0.7 * rough.tv_loss, (rough.tv_loss, smooth.tv_loss)


def chroma(image: Image.Image) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    return rgb_to_yiq(x)[:, 1:]


def test_preserve_colors_keeps_the_content_chroma(vgg, content, style) -> None:  # noqa: ANN001
    kept = run(content, [style], vgg, preserve_colors=True)[-1]
    changed = run(content, [style], vgg, preserve_colors=False)[-1]
    target = chroma(content.resize(kept.image.size, Image.Resampling.LANCZOS))
    kept_error = (chroma(kept.image) - target).abs().mean().item()
    changed_error = (chroma(changed.image) - target).abs().mean().item()
    assert kept_error < 0.02, kept_error  # 8-bit rounding and clipping to the RGB gamut only
    assert kept_error < changed_error / 2, (kept_error, changed_error)


def test_inits_optimizers_pooling_and_blends(vgg, content, style) -> None:  # noqa: ANN001
    other = picture(32, 56, seed=3)
    for extra in ({"init": "noise", "optimizer": "adam"}, {"init": "style-noise", "pooling": "avg"},
                  {"style_blend": (1.0, 0.0)}, {"style_blend": (0.3, 0.7), "style_scale": 0.5}):
        last = run(content, [style, other], vgg, steps=3, **extra)[-1]
        assert last.done and last.image.size == (48, 36) and np.isfinite(last.total_loss), extra


def test_style_noise_starts_in_the_style_palette(vgg, content) -> None:  # noqa: ANN001
    red = Image.new("RGB", (32, 32), (200, 30, 30))
    first = run(content, [red], vgg, steps=1, init="style-noise", content_weight=0.0, preview_every=1)[1]
    pixels = np.asarray(first.preview, dtype=np.float64).reshape(-1, 3).mean(0)
    assert pixels[0] > 150 and pixels[1] < 80 and pixels[2] < 80, pixels


def test_sizes_aspects_and_multiscale(vgg) -> None:  # noqa: ANN001
    wide, tall = picture(90, 50, seed=4), picture(30, 70, seed=5)
    events = run(wide, [tall], vgg, size=64, steps=3, multiscale=True, multiscale_start=32, style_scale=0.7,
                 preview_every=0)
    last = events[-1]
    assert last.image.size == (64, 36) and last.num_scales == 2 and last.total_steps == 6
    assert [e.size for e in events if e.step and not e.done] == [(32, 18)] * 3 + [(64, 36)] * 3
    assert [e.scale for e in events if e.preview is not None] == [0, 1, 1]  # each scale's end, the result
    # a style far smaller and of another shape than the content: upscaled to at least 16 px a side
    assert run(picture(33, 33, seed=6), [picture(200, 20, seed=7)], vgg, size=40, steps=2)[-1].image.size == (40, 40)


def test_max_size_caps_the_output(vgg, content, style) -> None:  # noqa: ANN001
    events = run(content, [style], vgg, size=512, max_size=40, steps=1)
    assert events[-1].image.size == (40, 30) and "limited to 40 px" in events[0].message


def test_cancel_between_steps_is_prompt(vgg, content, style) -> None:  # noqa: ANN001
    stop = threading.Event()
    events = []
    for event in stylize(content, [style], StyleSettings(**{**SMALL, "steps": 50}), cancel=stop, device="cpu", vgg=vgg):
        events.append(event)
        if event.step == 2:
            stop.set()
    last = events[-1]
    assert last.done and last.cancelled and last.step == 2 and len(events) == 4  # start, 1, 2, stopped
    assert last.image is not None and last.image.size == (48, 36) and "Stopped" in last.message


def test_cancel_inside_an_evaluation_abandons_the_step(vgg, content, style) -> None:  # noqa: ANN001
    calls = {"n": 0}

    def cancel() -> bool:  # checked before each step and again inside the optimiser's evaluation
        calls["n"] += 1
        return calls["n"] >= 6

    events = list(stylize(content, [style], StyleSettings(**{**SMALL, "steps": 50}), cancel=cancel, device="cpu", vgg=vgg))
    assert events[-1].cancelled and events[-1].step == 2, [e.step for e in events]


# ----------------------------------------------------------------------------- inputs


def png_header(width: int, height: int) -> bytes:
    """A small PNG file that claims width x height pixels (its pixel data is a few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def test_bad_inputs_get_sentences(content, style, tmp_path: Path) -> None:  # noqa: ANN001
    cases = [
        ((b"definitely not an image", [style], {}), "not an image"),
        ((png_header(60_000, 60_000), [style], {}), "megapixels"),
        ((content, [png_header(8000, 8000)], {}), "style image is 8000x8000 pixels"),
        ((content, [b""], {}), "empty"),
        ((str(tmp_path / "nope.png"), [style], {}), "does not exist"),
        ((content, [style], {"steps": 0}), "steps must be between 1"),
        ((content, [style], {"content_weight": 0.0, "style_weight": 0.0}), "both 0"),
        ((content, [style, style], {"style_blend": (0.0, 0.0)}), "all 0"),
        ((content, [style, style], {"style_blend": (1.0,)}), "one per style image"),
        ((content, [style], {"tv_weight": -1.0}), "tv weight"),
        ((content, [style], {"style_layers": ("relu9_9",)}), "not a VGG19 layer"),
        ((content, [], {}), "at least one style"),
        ((picture(200, 4, seed=8), [style], {"size": 64}), "too narrow"),
    ]
    for (c, s, extra), message in cases:
        with pytest.raises(InvalidInputError, match=message):
            stylize(c, s, StyleSettings(**{**SMALL, **extra}), device="cpu")  # raises before any work


def test_settings_from_a_form() -> None:
    form = {"steps": 3.0, "size": 48.0, "style_blend": [1, 2], "style_weight": 10, "not a setting": 1}
    settings = StyleSettings.from_dict(form).checked(n_styles=2)
    assert settings.steps == 3 and isinstance(settings.steps, int) and isinstance(settings.size, int)
    assert settings.style_blend == (1, 2) and settings.style_weight == 10.0
    with pytest.raises(InvalidInputError, match="whole number"):
        StyleSettings(steps=2.5).checked()  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="optimizer must be one of lbfgs, adam"):
        StyleSettings(optimizer="sgd").checked()  # type: ignore[arg-type]


def test_rgba_and_grayscale_inputs_work(vgg) -> None:  # noqa: ANN001
    rgba = picture(40, 40, seed=9, mode="RGBA")
    alpha = Image.new("L", (40, 40), 255)
    alpha.paste(0, (0, 0, 20, 40))  # left half fully transparent
    rgba.putalpha(alpha)
    loaded = load_image(rgba)
    assert loaded.mode == "RGB" and loaded.getpixel((5, 5)) == (255, 255, 255)  # composited over white
    gray = picture(36, 36, seed=10, mode="L")
    buf = io.BytesIO()
    gray.save(buf, format="PNG")
    palette = picture(30, 30, seed=11).convert("P")
    last = run(rgba, [buf.getvalue(), palette], vgg, steps=2)[-1]
    assert last.image.mode == "RGB" and last.image.size == (48, 48)
    assert load_image(np.zeros((20, 20), np.uint8)).mode == "RGB"


def test_example_images_exist_and_load() -> None:
    names = sorted(p.name for p in EXAMPLES.glob("*.jpg"))
    assert sum(n.startswith("content_") for n in names) >= 2 and sum(n.startswith("style_") for n in names) >= 2
    for name in names:
        assert load_image(EXAMPLES / name).mode == "RGB"
    assert "CC0" in (EXAMPLES / "ATTRIBUTION.md").read_text()


# ----------------------------------------------------------------------------- command line


def test_cli_writes_the_result_and_fails_in_one_line(hf_env: dict[str, str], vgg_file: Path, tmp_path: Path) -> None:
    env = {**hf_env, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "out.png"
    cmd = [sys.executable, "-m", "gandemo", "style", str(EXAMPLES / "content_house.jpg"),
           str(EXAMPLES / "style_waves.jpg"), str(EXAMPLES / "style_stained_glass.jpg"), "--style-blend", "1,0.5",
           "--out", str(out), "--steps", "3", "--size", "40", "--vgg-weights", str(vgg_file), "--preserve-colors"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (40, 30) and "wrote" in proc.stdout
    assert "3/3" in proc.stderr  # the progress bar
    bad = subprocess.run([sys.executable, "-m", "gandemo", "style", str(REPO_ROOT / "pyproject.toml"),
                          str(EXAMPLES / "style_waves.jpg"), "--out", str(tmp_path / "x.png"),
                          "--vgg-weights", str(vgg_file)],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and not (tmp_path / "x.png").exists()
    assert bad.stderr.strip().count("\n") == 0 and "not an image" in bad.stderr, bad.stderr
