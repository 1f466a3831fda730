"""Style tab: Gatys-style neural style transfer with live preview."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from PIL import Image

from ..device import pick_device
from ..errors import InvalidInputError
from ..style import StyleSettings, VGGFeatures, load_vgg19, stylize
from .common import PreviewFiles, gpu, human_errors, output_dir, png_file
from .i18n import Localizer

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples" / "style"

LESSON = """
**Three losses, one picture.** The image is optimised pixel by pixel to please a pretrained image
network (VGG19) in three ways. The **content loss** compares deep feature maps of the result and
of your photo: it keeps objects and layout. The **style loss** compares *Gram matrices*: for each
layer, how strongly every pair of feature channels fires together, summed over all positions.
That throws away *where* things are and keeps textures, colours and brush strokes, which is what
"style" means here. The **variation loss** (total variation) penalises differences between
neighbouring pixels: more of it gives smoother, less noisy results. The sliders weigh the three
against each other; the weights are normalised so a value means the same at any image size.
"""

_CANCELS: dict[str, threading.Event] = {}
_VGG: dict[str, VGGFeatures] = {}
_VGG_LOCK = threading.Lock()


def _vgg(pooling: str) -> VGGFeatures:
    with _VGG_LOCK:
        if pooling not in _VGG:
            _VGG[pooling] = load_vgg19(None, "relu5_1", pooling)
        return _VGG[pooling]


def tolerate_undecodable(image: gr.Image) -> gr.Image:
    """Let an undecodable upload through as its path, so load_image can explain it in words instead
    of Gradio's preprocessing error. (Patched on the instance: subclassing a Gradio component makes
    Gradio write a .pyi stub next to this module at import time.)"""
    original = image.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return original(payload)
        except (OSError, ValueError, SyntaxError):  # UnidentifiedImageError is an OSError
            if payload is None or getattr(payload, "path", None) is None:
                raise
            return payload.path

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


def arm_stop(request: gr.Request) -> None:
    """Give this visitor a fresh stop flag when they press Run, so Stop works even while the run
    is still waiting in the queue."""
    _CANCELS[getattr(request, "session_hash", None) or "anonymous"] = threading.Event()


def _image(value: Any, what: str) -> Image.Image | str:
    if value is None:
        raise InvalidInputError(f"Add a {what} first.")
    if isinstance(value, (tuple, list)):  # gallery items: (image, caption)
        value = value[0]
    if isinstance(value, dict):
        value = value.get("path") or value.get("name")
    return value


def _blend(text: str, n: int) -> tuple[float, ...] | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        weights = tuple(float(w) for w in text.replace(";", ",").split(",") if w.strip())
    except ValueError as e:
        raise InvalidInputError(f"Style blend must be numbers separated by commas, like '1, 0.5'; got '{text}'.") from e
    if len(weights) != n:
        raise InvalidInputError(f"Give one blend weight per style image: {n} style image(s), {len(weights)} weight(s).")
    return weights


@gpu(duration=300)
@human_errors
def run_style(
    content: Any, styles: list[Any] | None, content_weight_log10: float, style_weight_log10: float,
    tv_weight_log10: float, steps: float, size: float, optimizer: str, init: str, preserve_colors: bool,
    multiscale: bool, style_blend: str, style_scale: float, pooling: str, request: gr.Request,
) -> Any:
    """Stream a style transfer: preview image, loss curves, status, and finally the PNG download."""
    style_list = [_image(s, "style image") for s in (styles or [])]
    if not style_list:
        raise InvalidInputError("Add at least one style image.")
    settings = StyleSettings(
        size=int(size), steps=int(steps), content_weight=10 ** float(content_weight_log10),
        style_weight=10 ** float(style_weight_log10),
        tv_weight=0.0 if float(tv_weight_log10) <= -3 else 10 ** float(tv_weight_log10),
        optimizer=optimizer, init=init, preserve_colors=bool(preserve_colors), multiscale=bool(multiscale),
        style_blend=_blend(style_blend, len(style_list)), style_scale=float(style_scale), pooling=pooling,
        preview_every=5,
    )
    if float(content_weight_log10) <= -3:
        settings.content_weight = 0.0
    key = getattr(request, "session_hash", None) or "anonymous"
    cancel = _CANCELS.setdefault(key, threading.Event())
    events = stylize(_image(content, "content image"), style_list, settings, cancel, vgg=_vgg(pooling))
    rows: list[dict[str, float]] = []
    preview = None
    previews = PreviewFiles("style-preview")
    try:
        for ev in events:
            if math.isfinite(ev.total_loss) and not ev.done:
                rows += [{"step": ev.step, "term": t, "log10 loss": math.log10(v)} for t, v in
                         (("content", ev.content_loss), ("style", ev.style_loss), ("variation", ev.tv_loss))
                         if math.isfinite(v) and v > 0]
            if ev.preview is not None:
                preview = previews(ev.preview)
            status = (f"<progress value='{ev.step}' max='{max(ev.total_steps, 1)}' style='width:100%'></progress>\n\n"
                      f"{ev.message} · {ev.elapsed:.0f} s")
            plot = pd.DataFrame(rows[-3000:]) if rows else None
            if ev.done:
                out = png_file(ev.image, output_dir("style") / ("stylized_partial.png" if ev.cancelled else "stylized.png"))
                note = "⏹️ Stopped; here is the image so far." if ev.cancelled else "✅ Done."
                yield (out, plot, f"{note} {ev.image.width}×{ev.image.height} px in {ev.elapsed:.0f} s. "
                       f"Final losses: content {ev.content_loss:.3g}, style {ev.style_loss:.3g}, variation {ev.tv_loss:.3g}.",
                       out)
                return
            yield preview, plot, status, None
    finally:
        _CANCELS.pop(key, None)


def stop_style(request: gr.Request) -> str:
    """Stop this visitor's running (or queued) style transfer within one optimiser step."""
    cancel = _CANCELS.get(getattr(request, "session_hash", None) or "anonymous")
    if cancel is None:
        return "Nothing is running."
    cancel.set()
    return "Stopping…"


def _examples() -> list[list[Any]]:
    if not EXAMPLES_DIR.is_dir():
        return []
    contents = sorted(EXAMPLES_DIR.glob("content_*"))
    styles = sorted(EXAMPLES_DIR.glob("style_*"))
    return [[str(c), [str(s)]] for c, s in zip(contents, styles)] if contents and styles else []


def build_style_tab(tr: Localizer) -> None:
    gr.Markdown(LESSON)
    on_gpu = pick_device().type == "cuda"
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            content = tolerate_undecodable(
                gr.Image(label="Content image", type="filepath", image_mode=None, elem_id="style-content"))
            styles = gr.Gallery(label="Style image(s)", type="filepath", interactive=True, columns=3, height=200,
                                elem_id="style-images")
            cw = gr.Slider(-3, 3, value=0, step=0.1, label="Content weight (log10; -3 = off)")
            sw = gr.Slider(-2, 4, value=round(math.log10(50), 1), step=0.1, label="Style weight (log10)")
            tvw = gr.Slider(-3, 2, value=round(math.log10(5), 1), step=0.1, label="Variation weight (log10; -3 = off)")
            with gr.Row():
                steps = gr.Slider(1, 1000, value=300 if on_gpu else 120, step=1, label="Steps")
                size = gr.Slider(64, 2048 if on_gpu else 1024, value=512 if on_gpu else 256, step=32, label="Output size (long side, px)")
            with gr.Accordion("More options", open=False):
                with gr.Row():
                    optimizer = gr.Radio(["lbfgs", "adam"], value="lbfgs", label="Optimiser")
                    init = gr.Radio(["content", "noise", "style-noise"], value="content", label="Start from")
                    pooling = gr.Radio(["max", "avg"], value="max", label="Pooling")
                with gr.Row():
                    preserve = gr.Checkbox(label="Preserve the content's colours")
                    multiscale = gr.Checkbox(label="Coarse-to-fine (multi-scale)")
                with gr.Row():
                    blend = gr.Textbox(label="Style blend weights", placeholder="e.g. 1, 0.5 (one per style image)")
                    scale = gr.Slider(0.25, 2, value=1, step=0.05, label="Style scale")
            with gr.Row():
                run = gr.Button("Stylize", variant="primary", elem_id="style-run")
                stop = gr.Button("Stop", variant="stop", elem_id="style-stop")
        with gr.Column(scale=1):
            result = gr.Image(label="Result (live preview)", type="pil", format="png", interactive=False, elem_id="style-result")
            status = gr.Markdown(elem_id="style-status")
            stop_note = gr.Markdown(elem_id="style-stop-note")
            plot = gr.LinePlot(x="step", y="log10 loss", color="term", label="Loss terms (unweighted, log10)", height=220)
            download = gr.File(label="Full-resolution PNG", interactive=False)
    examples = _examples()
    if examples:
        gr.Examples(examples, [content, styles], label="Examples (made by the project, CC0)")
    inputs = [content, styles, cw, sw, tvw, steps, size, optimizer, init, preserve, multiscale, blend, scale, pooling]
    run.click(arm_stop, None, None, queue=False, api_visibility="private").then(
        run_style, inputs, [result, plot, status, download], api_name="stylize",
        show_progress_on=[status])  # the live preview stays visible; a failure gets one badge, by the status
    stop.click(stop_style, None, stop_note, api_name="stop_style", queue=False)
