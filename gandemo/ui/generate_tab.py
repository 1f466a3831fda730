"""Generate tab: pick a generator, draw seeded sample grids, interpolate between seeds."""

from __future__ import annotations

import random
from typing import Any

import gradio as gr

from ..errors import InvalidInputError
from ..explore import (
    MAX_FRAMES,
    MAX_SAMPLES,
    check_seed,
    frame_strip,
    interpolation_frames,
    sample_grid,
    write_animation,
)
from ..gan.latent import MAX_SEED
from ..generator import Generator
from ..hub import bundled_models
from ..images import display_scale, upscale
from .common import MODELS, default_model, gpu, human_errors, output_dir, png_file

LESSON = """
**How a GAN draws.** A *generator* is a neural network that turns a list of random numbers, the
*latent vector*, into an image. During training it plays a game against a *discriminator*, a second
network that looks at an image and says how likely it is to be real rather than generated. The
discriminator learns to catch fakes; the generator learns to fool it. After training, the generator
alone is kept: every latent vector gives an image, the same vector always gives the same image (here
each vector is named by a **seed**), and nearby vectors give similar images, so walking from one
vector to another morphs one picture into the next.
"""

MODES = ["A → B", "Loop A → B → A", "Latent walk (A, B and random seeds, looping)"]


def model_info(gen: Generator) -> str:
    size = f"{gen.image_size}×{gen.image_size}"
    kind = {1: "grayscale", 3: "RGB", 4: "RGBA (transparent background)"}[gen.channels]
    title = gen.card.title or gen.source
    lines = [
        f"**{title}**",
        f"- Source: `{gen.source}`",
        f"- Resolution: {size} px, {gen.channels} channel(s), {kind}",
        f"- Latent dimension: {gen.latent_dim}; layout: `{gen.layout}`",
    ]
    if gen.card.summary:
        lines.append(f"\n{gen.card.summary}")
    meta = gen.card.metadata
    if meta.get("license"):
        lines.append(f"\nLicence: {meta['license']}")
    return "\n".join(lines)


@gpu
@human_errors
def load_model(source: str) -> tuple[dict[str, Any], str]:
    """Load (or fetch from the cache) a generator; returns the updated picker and its description."""
    source = (source or "").strip()
    if not source:  # nothing picked yet (e.g. no bundled model installed): nothing to say
        return gr.update(), "Pick a bundled model or type a Hub repo id or a local path, then press **Load model**."
    gen = MODELS.get(source)
    choices = list(dict.fromkeys(bundled_models() + MODELS.keys()))
    return gr.update(choices=choices, value=source), model_info(gen)


@gpu
@human_errors
def generate(model: str, seed: float, num: float, truncation: float) -> tuple[str, list[str], str, dict[str, Any]]:
    """Seeded sample grid: the upscaled grid, downloads (native and upscaled PNG), model info and
    the state needed to map a click on the grid to a seed."""
    gen = MODELS.get(model)
    result = sample_grid(gen, seed, num, truncation or None)  # type: ignore[arg-type]  # it validates (None too)
    scale = display_scale(result.grid.width, target=768)
    shown = upscale(result.grid, scale)
    out = output_dir("samples")
    stem = f"{_slug(model)}_seed{result.seeds[0]}_n{len(result.seeds)}"
    native_path, big_path = out / f"{stem}.png", out / f"{stem}_x{scale}.png"
    result.grid.save(native_path)
    # compress_level=1: nearest-neighbour upscales compress well anyway, and level 6 costs ~4x the time
    shown.save(big_path, compress_level=1)
    state = {"seeds": result.seeds, "columns": result.columns, "cell": gen.image_size * scale}
    # the path, not the PIL image: Gradio would encode the same PNG a second time
    return str(big_path), [str(native_path), str(big_path)], model_info(gen), state


@gpu
@human_errors
def interpolate(
    model: str, seed_a: float, seed_b: float, frames: float, method: str, mode: str, fps: float, truncation: float
) -> tuple[str, str, list[str]]:
    """Frames between two seeds: a strip of all frames, an animated GIF and the same as WebP/PNG."""
    gen = MODELS.get(model)
    if mode not in MODES:
        raise InvalidInputError(f"Mode must be one of: {', '.join(MODES)}.")
    seeds = [check_seed(seed_a, "seed A"), check_seed(seed_b, "seed B")]  # an empty box is None
    loop = mode != MODES[0]
    if mode == MODES[2]:
        rng = random.Random(seeds[0] * 1_000_003 + seeds[1])
        seeds += [rng.randrange(0, 2**31) for _ in range(2)]
    images = interpolation_frames(gen, seeds, frames, method, loop, truncation or None)  # type: ignore[arg-type]
    scale = display_scale(gen.image_size, target=256)
    out = output_dir("interpolation")
    stem = f"{_slug(model)}_{seeds[0]}-{seeds[1]}_{method}_{len(images)}f"
    gif = write_animation(images, out / f"{stem}.gif", fps=fps, scale=scale)
    webp = write_animation(images, out / f"{stem}.webp", fps=fps, scale=scale)
    strip = frame_strip(images)
    strip_path = out / f"{stem}_strip.png"
    strip.save(strip_path)
    shown = png_file(upscale(strip, display_scale(strip.width, target=1024)), out / f"{stem}_strip_display.png")
    return shown, str(gif), [str(gif), str(webp), str(strip_path)]


def pick_cell(state: dict[str, Any] | None, evt: gr.SelectData) -> tuple[int | None, str]:
    if not state or not isinstance(evt.index, (list, tuple)) or len(evt.index) != 2:
        return None, "Click a cell of the grid to pick its seed."
    x, y = (int(v) for v in evt.index)
    cell = state["cell"]
    col, row = x // cell, y // cell
    i = row * state["columns"] + col
    if not (0 <= col < state["columns"]) or not 0 <= i < len(state["seeds"]):
        return None, "That spot is outside the samples."
    seed = state["seeds"][i]
    return seed, f"Picked seed **{seed}** (row {row + 1}, column {col + 1}). Use it as A or B below."


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text.strip())[-60:].strip("-") or "model"


def build_generate_tab() -> dict[str, gr.components.Component]:
    """Lay out the tab; returns components other tabs may want (the model picker)."""
    start = default_model()
    gr.Markdown(LESSON)
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            model = gr.Dropdown(
                choices=bundled_models(), value=start or None, label="Model", allow_custom_value=True,
                info="Bundled models, or any model you loaded below.",
            )
            source = gr.Textbox(
                label="Hub repo id or local path", placeholder="owner/name, owner/name@revision, or /path/to/folder",
                info="e.g. huggan/dcgan-mnist, nateraw/cryptopunks-gan, a folder with config.json + model.safetensors",
            )
            load_btn = gr.Button("Load model")
            info = gr.Markdown(elem_id="model-info")
        with gr.Column(scale=2):
            with gr.Tab("Samples"):
                with gr.Row():
                    seed = gr.Number(value=0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED - MAX_SAMPLES)
                    dice = gr.Button("🎲", scale=0, min_width=50)
                    num = gr.Slider(1, MAX_SAMPLES, value=16, step=1, label="Images")
                    truncation = gr.Slider(
                        0, 3, value=0, step=0.05, label="Truncation (0 = off)",
                        info="Redraws latent entries beyond ±t: lower = more typical, less varied.",
                    )
                gen_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                grid = gr.Image(
                    label="Samples (click one to pick its seed)", format="png", image_mode=None, type="pil",
                    interactive=False, elem_id="sample-grid", elem_classes=["pixelated"], buttons=["download", "fullscreen"],
                )
                picked_text = gr.Markdown("Click a cell of the grid to pick its seed.")
                with gr.Row():
                    use_a = gr.Button("Use picked seed as A", size="sm")
                    use_b = gr.Button("Use picked seed as B", size="sm")
                downloads = gr.File(label="Downloads (native and upscaled PNG)", file_count="multiple", interactive=False)
            with gr.Tab("Interpolate"):
                with gr.Row():
                    seed_a = gr.Number(value=0, label="Seed A", precision=0, minimum=0)
                    seed_b = gr.Number(value=1, label="Seed B", precision=0, minimum=0)
                    method = gr.Radio(["slerp", "lerp"], value="slerp", label="Path",
                                      info="slerp follows the sphere where Gaussian latents live; lerp cuts through it.")
                with gr.Row():
                    frames = gr.Slider(2, MAX_FRAMES, value=24, step=1, label="Frames")
                    fps = gr.Slider(1, 30, value=12, step=1, label="Frames per second")
                    mode = gr.Radio(MODES, value=MODES[0], label="Mode")
                interp_btn = gr.Button("Interpolate", variant="primary", elem_id="interpolate-btn")
                strip = gr.Image(label="Frames", format="png", image_mode=None, type="pil", interactive=False,
                                 elem_id="frame-strip", elem_classes=["pixelated"])
                animation = gr.Image(label="Animation", type="filepath", interactive=False, elem_id="animation",
                                     elem_classes=["pixelated"])
                anim_files = gr.File(label="Downloads (GIF, WebP, frame strip)", file_count="multiple", interactive=False)

    grid_state = gr.State(None)
    picked = gr.State(None)

    load_btn.click(load_model, source, [model, info], api_name="load_model")
    source.submit(load_model, source, [model, info], api_visibility="private")
    model.change(load_model, model, [model, info], api_visibility="private")
    dice.click(lambda: random.randrange(0, 2**31), None, seed, api_visibility="private", queue=False)
    gen_btn.click(generate, [model, seed, num, truncation], [grid, downloads, info, grid_state], api_name="generate",
                  show_progress_on=[grid])  # one spinner (or one "Error" badge), not one per output
    grid.select(pick_cell, grid_state, [picked, picked_text], api_visibility="private", queue=False)
    use_a.click(lambda p, cur: cur if p is None else p, [picked, seed_a], seed_a, api_visibility="private", queue=False)
    use_b.click(lambda p, cur: cur if p is None else p, [picked, seed_b], seed_b, api_visibility="private", queue=False)
    interp_btn.click(
        interpolate, [model, seed_a, seed_b, frames, method, mode, fps, truncation], [strip, animation, anim_files],
        api_name="interpolate", show_progress_on=[strip],
    )
    return {"model": model, "info": info}
