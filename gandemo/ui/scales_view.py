"""Generate tab, "Scales": an MSG-GAN draws its image at every scale, 4x4 first; this view shows them.

One picture per scale, each holding the same seeds side by side, every scale blown up with nearest-
neighbour to the same size so its blockiness shows: the 4x4 image already fixes the layout and the
colours, each scale above adds detail. A DCGAN draws only its final image: the view says so.
Named endpoint ``/scales`` (model, seed, num) -> (gallery of (image, caption), note).
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import torch
import torch.nn.functional as F

from ..errors import InvalidInputError
from ..explore import check_seed
from ..i18n import t
from ..images import make_grid
from .common import MODELS, gpu, human_errors, output_dir, png_file, whole_number
from .i18n import Localizer

MAX_SEEDS = 8  # seeds side by side in each scale's picture
CELL = 128  # every scale is shown this many pixels wide (or at its own size when that is larger)


def scale_pictures(images: list[torch.Tensor], cell: int) -> list[torch.Tensor]:
    """Each scale's batch blown up by an integer nearest-neighbour factor to ``cell`` px (larger scales stay)."""
    return [F.interpolate(x, scale_factor=max(1, cell // x.shape[-1]), mode="nearest") for x in images]


@gpu
@human_errors
def show_scales(model: str, seed: float, num: float) -> tuple[list[tuple[str, str]], str]:
    """The model's images at every scale for seeds seed, seed+1, ... (one picture per scale, with a caption),
    and a sentence about them; for a model that is not an MSG-GAN, no pictures and a sentence saying why."""
    return _scales(model, seed, num)


@gpu
@human_errors
def scales_first_look(shown: str | None, model: str, seed: float, num: float) -> tuple[Any, Any]:
    """The Scales view opened: the loaded model's scales (or why it has none) at once, unless it shows them."""
    return (gr.skip(), gr.skip()) if shown else _scales(model, seed, num)


def _scales(model: str, seed: float, num: float) -> tuple[list[tuple[str, str]], str]:
    gen = MODELS.get(model)
    first = check_seed(seed, t("generate.seed"))
    count = whole_number(num, t("scales.num"))
    if not 1 <= count <= MAX_SEEDS:
        raise InvalidInputError(t("scales.error.num", most=MAX_SEEDS, value=count))
    if gen.arch == "progressive":  # its smaller scales were trained only while it grew
        return [], t("scales.progressive", size=gen.image_size)
    if gen.arch != "msg":
        return [], t("scales.not_msg", layout=gen.layout, size=gen.image_size)
    sizes = gen.scale_sizes
    images = gen.sample_scales(list(range(first, first + count)))
    cell = max(CELL, gen.image_size)
    out = output_dir("scales")
    gallery = []
    for size, shown in zip(sizes, scale_pictures(images, cell)):
        picture = make_grid(shown, columns=count, padding=4)
        path = png_file(picture, out / f"scale{size:03d}_seed{first}_n{count}.png")
        factor = max(1, cell // size)
        key = "scales.caption.final" if size == gen.image_size else "scales.caption"
        gallery.append((path, t(key, size=f"{size}×{size}", factor=factor)))
    note = t("scales.note", count=len(sizes), first=f"{sizes[0]}×{sizes[0]}", last=f"{sizes[-1]}×{sizes[-1]}")
    return gallery, note


def build_scales_view(tr: Localizer, model: gr.components.Component, **events: Any) -> None:
    """The "Scales" sub-tab of Generate, for the picked ``model``; ``events``: the tab's worker pool."""
    with tr(gr.Tab("Scales"), label="scales.tab") as tab:
        tr(gr.Markdown(), value="scales.intro")
        with gr.Row():
            seed = tr(gr.Number(value=0, precision=None, step=1, minimum=0, elem_id="scales-seed"), label="generate.seed")
            num = tr(gr.Slider(1, MAX_SEEDS, value=4, step=1, elem_id="scales-num"), label="scales.num")
            button = tr(gr.Button(variant="primary", elem_id="scales-show"), value="scales.show")
        gallery = tr(gr.Gallery(columns=1, height="auto", object_fit="contain", interactive=False,
                                elem_id="scales-gallery", elem_classes=["pixelated"]), label="scales.gallery")
        note = gr.Markdown(elem_id="scales-note")
    button.click(show_scales, [model, seed, num], [gallery, note], api_name="scales", show_progress_on=[gallery],
                 **events)
    tab.select(scales_first_look, [note, model, seed, num], [gallery, note], api_visibility="private",
               show_progress_on=[gallery], **events)
