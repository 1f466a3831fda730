"""Generate tab: pick a generator, draw seeded sample grids, interpolate between seeds."""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from ..access import forget_upload, is_shared, register_upload
from ..errors import InvalidInputError
from ..explore import frame_strip, interpolation_frames, latent_chart, layer_shapes, sample_grid, write_animation
from ..gan.latent import latent_for_seed
from ..generator import Generator
from ..hub import WEIGHT_SUFFIXES, bundled_models
from ..i18n import t, translate_message
from ..images import display_scale, to_pil_list, upscale
from ..limits import MAX_FRAMES, MAX_SAMPLES, MAX_SEED, check_seed
from .common import MODELS, OUTPUT_MAX_AGE_S, default_model, gpu, human_errors, output_dir, png_file, whole_number
from .i18n import Localizer, request_language
from .scales_view import build_scales_view

# Generate, Interpolate and model loading share a small pool of workers of their own: a class's clicks
# run two at a time (one per core on a small machine) instead of queueing behind each other, and never
# behind training or the Lab (benchmarks/classroom_load.py).
EXPLORE = {"concurrency_id": "explore", "concurrency_limit": int(os.environ.get("GANDEMO_EXPLORE_CONCURRENCY", "2"))}
MODES = ["A → B", "Loop A → B → A", "Latent walk (A, B and random seeds, looping)"]
MODE_KEYS = ["generate.mode.ab", "generate.mode.loop", "generate.mode.walk"]


def model_info(gen: Generator) -> str:
    size = f"{gen.image_size}×{gen.image_size}"
    kind = t(f"generate.kind.{gen.channels}")
    title = gen.card.title or gen.source
    lines = [
        f"**{title}**",
        f"- {t('generate.info.source')}: `{gen.source}`",
        f"- {t('generate.info.resolution', size=size, channels=gen.channels, kind=kind)}",
        f"- {t('generate.info.latent', dim=gen.latent_dim, layout=gen.layout)}",
    ]
    if gen.card.summary:
        lines.append(f"\n{translate_message(gen.card.summary)}")
    meta = gen.card.metadata
    if meta.get("license"):
        lines.append("\n" + t("generate.info.licence", licence=meta["license"]))
    return "\n".join(lines)


@gpu
@human_errors
def load_model(source: str) -> tuple[dict[str, Any], str]:
    """Load (or fetch from the cache) a generator; returns the updated picker and its description."""
    source = (source or "").strip()
    if not source:  # nothing picked yet (e.g. no bundled model installed): nothing to say
        return gr.update(), t("generate.pick_prompt")
    gen = MODELS.get(source)
    # shared: never offer what other visitors loaded (their run names and uploads are their secrets)
    loaded = [source] if is_shared() else MODELS.keys()
    choices = list(dict.fromkeys(bundled_models() + loaded))
    return gr.update(choices=choices, value=source), model_info(gen)


@gpu
@human_errors
def load_upload(file: str | None) -> tuple[dict[str, Any], str]:
    """Load a weights file the visitor uploaded; it is named ``upload:<key>`` from then on."""
    if not file:
        return gr.update(), t("generate.upload.hint")
    # a file that isn't weights is refused by hub.resolve, with the message every other source gets
    handle = register_upload(Path(file if isinstance(file, str) else file.name))
    try:
        return load_model(handle)
    except Exception:
        forget_upload(handle)  # junk uploads must not push other visitors' weights out of the table
        raise


class ResultCache:
    """Recent results by their inputs: a class that all presses Generate with the default seed gets one
    computation and 29 answers from memory. Entries name files in the output folder, which live an
    hour; an entry is used for half that and only while its files exist."""

    def __init__(self, capacity: int = 256, max_age_s: float = OUTPUT_MAX_AGE_S / 2) -> None:
        self.capacity, self.max_age_s = capacity, max_age_s
        self._items: OrderedDict[tuple[Any, ...], tuple[float, Any, list[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            made, value, files = item
            if time.monotonic() - made > self.max_age_s or not all(Path(f).is_file() for f in files):
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: tuple[Any, ...], value: Any, files: list[str]) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value, files)
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)


RESULTS = ResultCache()


# What a class costs the server (benchmarks/classroom_load.py): every file an answer names is copied into
# Gradio's cache and then downloaded, each through the whole HTTP stack, and encoding big pictures was a
# third of the server's work per click. So /generate and /interpolate answer with the pictures a person
# looks at, one file each: the grid enlarged to fit 512 px, the frame strip and the GIF at their native
# resolution (one pixel per generated pixel), which the page enlarges with crisp pixels (CSS below). The
# files to keep (native and large PNG, large GIF, WebP, frame strip) are written when someone asks.
GRID_DISPLAY_PX = 512  # the grid's size on the screen at most; the animation is shown half as tall
GRID_DOWNLOAD_PX = 768
ENLARGE_CSS = """
.enlarge img { object-fit: contain !important; }
#frame-strip .image-frame { width: 100%; height: auto; }
#frame-strip img { width: 100%; height: auto; max-height: 640px; }
"""


def _grid(model: str, seed: float, num: float, truncation: float) -> tuple[Generator, Any, tuple[Any, ...]]:
    """The generator, the seeded grid (from the result cache when someone asked the same) and its key."""
    gen = MODELS.get(model)
    whole_number(num, t("generate.images"))
    key = ("grid", model, id(gen), check_seed(seed, t("generate.seed")), num, truncation)
    result = RESULTS.get(key)
    if result is None:
        result = sample_grid(gen, seed, num, truncation or None)  # type: ignore[arg-type]  # it validates (None too)
        RESULTS.put(key, result, [])
    return gen, result, key


@gpu
@human_errors
def generate(model: str, seed: float, num: float, truncation: float) -> tuple[str, str, dict[str, Any]]:
    """Seeded sample grid: the grid upscaled for the screen, model info, and the state that maps a click
    on the grid to a seed and makes the downloads of this very grid."""
    gen, result, key = _grid(model, seed, num, truncation)
    shown = RESULTS.get(("shown", *key))
    # The grid is enlarged here, not by the page: Gradio maps a click to the picture's pixels assuming it
    # is never drawn larger than it is, and a click picks a seed.
    scale = display_scale(result.grid.width, target=GRID_DISPLAY_PX)
    if shown is None:
        out = output_dir("samples")
        shown = str(out / f"{_slug(model)}_seed{result.seeds[0]}_n{len(result.seeds)}_x{scale}.png")
        # compress_level=1: nearest-neighbour upscales compress well anyway, and level 6 costs ~4x the time
        upscale(result.grid, scale).save(shown, compress_level=1)
        RESULTS.put(("shown", *key), shown, [shown])
    state = {"seeds": result.seeds, "columns": result.columns, "cell": gen.image_size * scale,
             "request": [model, seed, num, truncation]}
    return shown, model_info(gen), state


@gpu
@human_errors
def grid_files(model: str, seed: float, num: float, truncation: float) -> list[str]:
    """The files of a seeded grid to keep: the native PNG (one pixel per pixel) and a large upscaled copy."""
    return _grid_files(model, seed, num, truncation)


@gpu
@human_errors
def grid_files_shown(state: dict[str, Any] | None) -> list[str]:
    """The Downloads button: the files of the grid on the screen (not of whatever the boxes say now)."""
    if not isinstance(state, dict) or "request" not in state:
        raise InvalidInputError(t("generate.files.first"))
    return _grid_files(*state["request"])


def _grid_files(model: str, seed: float, num: float, truncation: float) -> list[str]:
    gen, result, key = _grid(model, seed, num, truncation)
    files = RESULTS.get(("files", *key))
    if files is None:
        out = output_dir("samples")
        scale = display_scale(result.grid.width, target=GRID_DOWNLOAD_PX)
        stem = f"{_slug(model)}_seed{result.seeds[0]}_n{len(result.seeds)}"
        files = [png_file(result.grid, out / f"{stem}.png"), str(out / f"{stem}_x{scale}.png")]
        upscale(result.grid, scale).save(files[1], compress_level=1)
        RESULTS.put(("files", *key), files, files)
    return files


def _interpolation(model: str, seed_a: float, seed_b: float, frames: float, method: str, mode: str, fps: float,
                   truncation: float) -> tuple[Generator, list[Any], list[int], tuple[Any, ...]]:
    gen = MODELS.get(model)
    if mode not in MODES:
        raise InvalidInputError(f"Mode must be one of: {', '.join(MODES)}.")
    seeds = [check_seed(seed_a, "seed A"), check_seed(seed_b, "seed B")]  # an empty box is None
    whole_number(frames, t("generate.frames"))
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not math.isfinite(fps):
        raise InvalidInputError(t("generate.error.fps", value=fps))
    key = ("interpolation", model, id(gen), tuple(seeds), frames, method, mode, truncation)
    images = RESULTS.get(key)
    if mode == MODES[2]:
        rng = random.Random(seeds[0] * 1_000_003 + seeds[1])
        seeds += [rng.randrange(0, 2**31) for _ in range(2)]
    if images is None:
        images = interpolation_frames(gen, seeds, frames, method, mode != MODES[0], truncation or None)  # type: ignore[arg-type]
        RESULTS.put(key, images, [])
    return gen, images, seeds, key


@gpu
@human_errors
def interpolate(
    model: str, seed_a: float, seed_b: float, frames: float, method: str, mode: str, fps: float, truncation: float
) -> tuple[str, str, dict[str, Any]]:
    """Frames between two seeds: a strip of all frames and the animated GIF, both for the screen."""
    args = [model, seed_a, seed_b, frames, method, mode, fps, truncation]
    gen, images, seeds, key = _interpolation(*args)
    shown = RESULTS.get(("shown", *key, fps))
    if shown is None:
        out = output_dir("interpolation")
        stem = f"{_slug(model)}_{seeds[0]}-{seeds[1]}_{method}_{len(images)}f"
        gif = write_animation(images, out / f"{stem}_shown.gif", fps=fps, scale=1)
        shown = (png_file(frame_strip(images), out / f"{stem}_strip.png"), str(gif))
        RESULTS.put(("shown", *key, fps), shown, list(shown))
    return shown[0], shown[1], {"request": args}


@gpu
@human_errors
def interpolation_files(
    model: str, seed_a: float, seed_b: float, frames: float, method: str, mode: str, fps: float, truncation: float
) -> list[str]:
    """The files of an interpolation to keep: animated GIF, animated WebP and the native frame strip."""
    return _interpolation_files([model, seed_a, seed_b, frames, method, mode, fps, truncation])


@gpu
@human_errors
def interpolation_files_shown(state: dict[str, Any] | None) -> list[str]:
    """The Downloads button of the Interpolate tab: the files of the animation on the screen."""
    if not isinstance(state, dict) or "request" not in state:
        raise InvalidInputError(t("generate.files.first_animation"))
    return _interpolation_files(state["request"])


def _interpolation_files(args: list[Any]) -> list[str]:
    gen, images, seeds, key = _interpolation(*args)
    fps = args[6]
    files = RESULTS.get(("files", *key, fps))
    if files is None:
        out = output_dir("interpolation")
        stem = f"{_slug(args[0])}_{seeds[0]}-{seeds[1]}_{args[4]}_{len(images)}f"
        scale = display_scale(gen.image_size, target=256)  # the animations to keep are enlarged, the strip native
        shown = RESULTS.get(("shown", *key, fps))  # the strip on the screen is the one to keep: not written twice
        files = [str(write_animation(images, out / f"{stem}.gif", fps=fps, scale=scale)),
                 str(write_animation(images, out / f"{stem}.webp", fps=fps, scale=scale)),
                 shown[0] if shown is not None else png_file(frame_strip(images), out / f"{stem}_strip.png")]
        RESULTS.put(("files", *key, fps), files, files)
    return files


STEERED = 5  # latent dimensions a person steers with sliders at once


@gpu
@human_errors
def latent_reset(model: str, seed: float, first: float) -> list[Any]:
    """A seed's latent vector: the image, the bar chart of all its values, and the sliders set to the
    values of the ``STEERED`` dimensions from ``first`` on."""
    return _latent_view(model, seed, first)


@gpu
@human_errors
def latent_first_look(shown: str | None, model: str, seed: float, first: float) -> list[Any]:
    """The Latent vector view opened: the seed's vector at once, sliders, image and chart, unless it already
    shows one (a person's slider changes stay when they come back)."""
    return [gr.skip()] * (STEERED + 3) if shown else _latent_view(model, seed, first)


def _latent_view(model: str, seed: float, first: float) -> list[Any]:
    gen = MODELS.get(model)
    seed_value = check_seed(seed, t("generate.seed"))
    z = latent_for_seed(seed_value, gen.latent_dim)
    dims = _steered(first, gen.latent_dim)
    sliders = [gr.update(value=round(float(z[d]), 2), label=f"z[{d}]", visible=True) for d in dims]
    sliders += [gr.update(visible=False)] * (STEERED - len(dims))
    return [*sliders, *_latent_outputs(gen, z, dims)]


@gpu
@human_errors
def latent_steer(model: str, seed: float, first: float, z0: float, z1: float, z2: float, z3: float,
                 z4: float) -> list[Any]:
    """The same seed with the steered dimensions set to the sliders' values."""
    values = (z0, z1, z2, z3, z4)[:STEERED]
    gen = MODELS.get(model)
    z = latent_for_seed(check_seed(seed, t("generate.seed")), gen.latent_dim)
    dims = _steered(first, gen.latent_dim)
    for d, v in zip(dims, values):
        if isinstance(v, (int, float)) and math.isfinite(v):
            z[d] = max(-10.0, min(10.0, float(v)))
    return _latent_outputs(gen, z, dims)


def _steered(first: float, latent_dim: int) -> list[int]:
    start = int(first or 0) if isinstance(first, (int, float)) and math.isfinite(first) else 0
    start = max(0, min(start, max(latent_dim - STEERED, 0)))
    return list(range(start, min(start + STEERED, latent_dim)))


def _latent_outputs(gen: Generator, z: torch.Tensor, dims: list[int]) -> list[Any]:
    image = to_pil_list(gen(z[None]))[0]
    out = output_dir("latent")
    shown = png_file(upscale(image, display_scale(gen.image_size, target=256)), out / "image.png")
    chart = png_file(latent_chart(z, dims), out / "latent.png")
    note = t("generate.latent.note", dim=gen.latent_dim, first=dims[0], last=dims[-1],
             norm=f"{float(z.norm()):.1f}", expected=f"{math.sqrt(gen.latent_dim):.1f}")
    return [shown, chart, note]


@gpu
@human_errors
def show_layers(model: str) -> str:
    """The generator's layers and the shape of what each one outputs, from the latent vector to the image."""
    return _layers_table(model)


@human_errors
def layers_first_look(shown: str | None, model: str) -> Any:
    """The Layers view opened: its table at once, unless it already shows one."""
    return gr.skip() if shown else _layers_table(model)


def _layers_table(model: str) -> str:
    gen = MODELS.get(model)
    rows = [f"| {t('generate.layers.layer')} | {t('generate.layers.kind')} | {t('generate.layers.shape')} | "
            f"{t('generate.layers.params')} |", "|---|---|---|---:|",
            f"| z | {t('generate.layers.latent')} | {gen.latent_dim} × 1 × 1 | 0 |"]
    for layer in layer_shapes(gen):
        rows.append(f"| `{layer.name}` | {layer.kind} | {' × '.join(map(str, layer.shape))} | {layer.parameters:,} |")
    return t("generate.layers.explain") + "\n\n" + "\n".join(rows)


def pick_cell(state: dict[str, Any] | None, evt: gr.SelectData, request: gr.Request) -> tuple[int | None, str]:
    lang = request_language(request)
    if not state or not isinstance(evt.index, (list, tuple)) or len(evt.index) != 2:
        return None, t("generate.pick_hint", lang)
    x, y = (int(v) for v in evt.index)
    cell = state["cell"]
    col, row = x // cell, y // cell
    i = row * state["columns"] + col
    if not (0 <= col < state["columns"]) or not 0 <= i < len(state["seeds"]):
        return None, t("generate.outside", lang)
    seed = state["seeds"][i]
    return seed, t("generate.picked", lang, seed=seed, row=row + 1, column=col + 1)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text.strip())[-60:].strip("-") or "model"


def build_generate_tab(tr: Localizer) -> dict[str, gr.components.Component]:
    """Lay out the tab; returns components other tabs may want (the model picker)."""
    start = default_model()
    shared = is_shared()
    tr(gr.Markdown(), value="generate.lesson")
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            model = tr(gr.Dropdown(choices=bundled_models(), value=start or None, allow_custom_value=True),
                       label="generate.model", info="generate.model.info")
            suffix = ".shared" if shared else ""
            source = tr(gr.Textbox(), label="generate.source" + suffix, placeholder="generate.source.placeholder" + suffix,
                        info="generate.source.info" + suffix)
            load_btn = tr(gr.Button(), value="generate.load")
            upload = tr(gr.File(file_count="single", type="filepath", file_types=list(WEIGHT_SUFFIXES),
                                elem_id="weights-upload"), label="generate.upload")
            info = gr.Markdown(elem_id="model-info")
        with gr.Column(scale=2):
            with tr(gr.Tab("Samples"), label="generate.samples_tab"):
                with gr.Row():
                    seed = tr(gr.Number(value=0, precision=None, step=1, minimum=0, maximum=MAX_SEED - MAX_SAMPLES), label="generate.seed")
                    dice = gr.Button("🎲", scale=0, min_width=50)
                    num = tr(gr.Slider(1, MAX_SAMPLES, value=16, step=1), label="generate.images")
                    truncation = tr(gr.Slider(0, 3, value=0, step=0.05), label="generate.truncation",
                                    info="generate.truncation.info")
                gen_btn = tr(gr.Button(variant="primary", elem_id="generate-btn"), value="generate.button")
                grid = tr(gr.Image(format="png", image_mode=None, type="pil", interactive=False, elem_id="sample-grid",
                                   elem_classes=["pixelated", "label-above"], buttons=["download", "fullscreen"]), label="generate.grid")
                picked_text = tr(gr.Markdown(), value="generate.pick_hint")
                with gr.Row():
                    use_a = tr(gr.Button(size="sm"), value="generate.use_a")
                    use_b = tr(gr.Button(size="sm"), value="generate.use_b")
                with gr.Row():
                    files_btn = tr(gr.Button(size="sm", elem_id="grid-files-btn"), value="generate.files.button")
                    downloads = tr(gr.File(file_count="multiple", interactive=False, elem_id="grid-files", scale=3),
                                   label="generate.downloads")
            with tr(gr.Tab("Interpolate"), label="generate.interpolate_tab"):
                with gr.Row():
                    seed_a = tr(gr.Number(value=0, precision=None, step=1, minimum=0), label="generate.seed_a")
                    seed_b = tr(gr.Number(value=1, precision=None, step=1, minimum=0), label="generate.seed_b")
                    method = tr(gr.Radio(["slerp", "lerp"], value="slerp"), label="generate.path", info="generate.path.info")
                with gr.Row():
                    frames = tr(gr.Slider(2, MAX_FRAMES, value=24, step=1), label="generate.frames")
                    fps = tr(gr.Slider(1, 30, value=12, step=1), label="generate.fps")
                    mode = tr(gr.Radio(MODES, value=MODES[0]), label="generate.mode",
                              choices=list(zip(MODE_KEYS, MODES)))
                interp_btn = tr(gr.Button(variant="primary", elem_id="interpolate-btn"), value="generate.interpolate")
                strip = tr(gr.Image(format="png", image_mode=None, type="pil", interactive=False, elem_id="frame-strip",
                                    elem_classes=["pixelated", "enlarge", "label-above"]), label="generate.strip")
                animation = tr(gr.Image(type="filepath", interactive=False, elem_id="animation", height=GRID_DISPLAY_PX // 2,
                                        elem_classes=["pixelated", "enlarge"]),
                               label="generate.animation")
                with gr.Row():
                    anim_files_btn = tr(gr.Button(size="sm", elem_id="anim-files-btn"), value="generate.files.button")
                    anim_files = tr(gr.File(file_count="multiple", interactive=False, elem_id="anim-files", scale=3),
                                    label="generate.anim_downloads")
            with tr(gr.Tab("Latent vector"), label="generate.latent_tab") as latent_tab:
                tr(gr.Markdown(), value="generate.latent.intro")
                with gr.Row():
                    latent_seed = tr(gr.Number(value=0, precision=None, step=1, minimum=0, elem_id="latent-seed"), label="generate.seed")
                    first_dim = tr(gr.Number(value=0, precision=None, step=1, minimum=0, elem_id="latent-first"),
                                   label="generate.latent.first", info="generate.latent.first.info")
                    latent_btn = tr(gr.Button(elem_id="latent-show"), value="generate.latent.show")
                with gr.Row():
                    with gr.Column(scale=1, min_width=200):
                        steer = [gr.Slider(-3, 3, value=0, step=0.05, label=f"z[{i}]", elem_id=f"latent-z{i}")
                                 for i in range(STEERED)]
                    with gr.Column(scale=1, min_width=200):
                        latent_image = tr(gr.Image(type="filepath", interactive=False, elem_id="latent-image",
                                                   elem_classes=["pixelated"]), label="generate.latent.image")
                latent_bars = tr(gr.Image(type="filepath", interactive=False, elem_id="latent-chart", elem_classes=["label-above"]),
                                 label="generate.latent.chart")
                latent_note = gr.Markdown(elem_id="latent-note")
            with tr(gr.Tab("Layers"), label="generate.layers_tab") as layers_tab:
                tr(gr.Markdown(), value="generate.layers.intro")
                layers_btn = tr(gr.Button(elem_id="layers-show"), value="generate.layers.show")
                layers_table = gr.Markdown(elem_id="layers-table")
            build_scales_view(tr, model, **EXPLORE)  # an MSG-GAN's images at every scale: /scales

    grid_state = gr.State(None)
    interp_state = gr.State(None)
    picked = gr.State(None)

    load_btn.click(load_model, source, [model, info], api_name="load_model", **EXPLORE)
    source.submit(load_model, source, [model, info], api_visibility="private", **EXPLORE)
    upload.upload(load_upload, upload, [model, info], api_name="load_upload", **EXPLORE)
    model.change(load_model, model, [model, info], api_visibility="private", **EXPLORE)
    dice.click(lambda: random.randrange(0, 2**31), None, seed, api_visibility="private", queue=False)
    gen_btn.click(generate, [model, seed, num, truncation], [grid, info, grid_state], api_name="generate",
                  show_progress_on=[grid], **EXPLORE).then(  # one spinner (or one "Error" badge), not one per output
        lambda: None, None, downloads, api_visibility="private", queue=False)  # old downloads belong to the old grid
    files_btn.click(grid_files_shown, grid_state, downloads, api_visibility="private", **EXPLORE)
    # the same files by arguments, for gradio_client (an invisible trigger: the page's button uses the grid shown)
    gr.Button(visible=False).click(grid_files, [model, seed, num, truncation], downloads, api_name="grid_files",
                                   **EXPLORE)
    grid.select(pick_cell, grid_state, [picked, picked_text], api_visibility="private", queue=False)
    use_a.click(lambda p, cur: cur if p is None else p, [picked, seed_a], seed_a, api_visibility="private", queue=False)
    use_b.click(lambda p, cur: cur if p is None else p, [picked, seed_b], seed_b, api_visibility="private", queue=False)
    interp_btn.click(
        interpolate, [model, seed_a, seed_b, frames, method, mode, fps, truncation], [strip, animation, interp_state],
        api_name="interpolate", show_progress_on=[strip], **EXPLORE,
    ).then(lambda: None, None, anim_files, api_visibility="private", queue=False)
    anim_files_btn.click(interpolation_files_shown, interp_state, anim_files, api_visibility="private", **EXPLORE)
    gr.Button(visible=False).click(interpolation_files, [model, seed_a, seed_b, frames, method, mode, fps, truncation],
                                   anim_files, api_name="interpolation_files", **EXPLORE)
    latent_out = [latent_image, latent_bars, latent_note]
    latent_btn.click(latent_reset, [model, latent_seed, first_dim], [*steer, *latent_out], api_name="latent_vector",
                     show_progress_on=[latent_image], **EXPLORE)
    for slider in steer:
        slider.release(latent_steer, [model, latent_seed, first_dim, *steer], latent_out, api_visibility="private",
                       show_progress="hidden", trigger_mode="always_last", **EXPLORE)
    layers_btn.click(show_layers, model, layers_table, api_name="generator_layers", **EXPLORE)
    # opening either view shows the loaded model's at once, not an empty panel
    latent_tab.select(latent_first_look, [latent_image, model, latent_seed, first_dim], [*steer, *latent_out],
                      api_visibility="private", show_progress_on=[latent_image], **EXPLORE)
    layers_tab.select(layers_first_look, [layers_table, model], layers_table, api_visibility="private", **EXPLORE)
    return {"model": model, "info": info}
