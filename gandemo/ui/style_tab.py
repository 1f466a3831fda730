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
from ..i18n import t, translate_message
from ..style import DEFAULT_STYLE_LAYERS, StyleSettings, VGGFeatures, load_vgg19, stylize
from ..style.gram_view import gram_heatmap
from .common import PreviewFiles, gpu, human_errors, output_dir, png_file, whole_number
from .i18n import Localizer, keep_page_language, request_language

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples" / "style"

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
        # UnidentifiedImageError is an OSError; a decompression bomb raises its own Exception subclass
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            if payload is None or getattr(payload, "path", None) is None:
                raise
            return payload.path

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


def arm_stop(request: gr.Request) -> None:
    """Give this visitor a fresh stop flag when they press Run, so Stop works even while the run
    is still waiting in the queue."""
    _CANCELS[getattr(request, "session_hash", None) or "anonymous"] = threading.Event()


def _image(value: Any, missing_key: str) -> Image.Image | str:
    if value is None:
        raise InvalidInputError(t(missing_key))
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
        raise InvalidInputError(t("style.error.blend_numbers", text=text)) from e
    if len(weights) != n:
        raise InvalidInputError(t("style.error.blend_count", styles=n, weights=len(weights)))
    return weights


@gpu(duration=300)
@human_errors
def run_style(
    content: Any, styles: list[Any] | None, content_weight_log10: float, style_weight_log10: float,
    tv_weight_log10: float, steps: float, size: float, optimizer: str, init: str, preserve_colors: bool,
    multiscale: bool, style_blend: str, style_scale: float, pooling: str, request: gr.Request,
) -> Any:
    """Stream a style transfer: preview image, loss curves, status, and finally the PNG download."""
    key = getattr(request, "session_hash", None) or "anonymous"
    try:  # whatever happens, even a refused setting, this visitor's stop flag goes with the run
        yield from _run_style(content, styles, content_weight_log10, style_weight_log10, tv_weight_log10, steps, size,
                              optimizer, init, preserve_colors, multiscale, style_blend, style_scale, pooling, key)
    finally:
        _CANCELS.pop(key, None)


def _run_style(
    content: Any, styles: list[Any] | None, content_weight_log10: float, style_weight_log10: float,
    tv_weight_log10: float, steps: float, size: float, optimizer: str, init: str, preserve_colors: bool,
    multiscale: bool, style_blend: str, style_scale: float, pooling: str, key: str,
) -> Any:
    style_list = [_image(s, "style.error.no_style") for s in (styles or [])]
    if not style_list:
        raise InvalidInputError(t("style.error.no_styles"))
    settings = StyleSettings(
        size=whole_number(size, t("style.size")), steps=whole_number(steps, t("style.steps")), content_weight=10 ** float(content_weight_log10),
        style_weight=10 ** float(style_weight_log10),
        tv_weight=0.0 if float(tv_weight_log10) <= -3 else 10 ** float(tv_weight_log10),
        optimizer=optimizer, init=init, preserve_colors=bool(preserve_colors), multiscale=bool(multiscale),
        style_blend=_blend(style_blend, len(style_list)), style_scale=float(style_scale), pooling=pooling,
        preview_every=5,
    )
    if float(content_weight_log10) <= -3:
        settings.content_weight = 0.0
    cancel = _CANCELS.setdefault(key, threading.Event())
    events = stylize(_image(content, "style.error.no_content"), style_list, settings, cancel, vgg=_vgg(pooling))
    rows: list[dict[str, float]] = []
    preview = None
    previews = PreviewFiles("style-preview")
    for ev in events:
        if math.isfinite(ev.total_loss) and not ev.done:
            rows += [{"step": ev.step, "term": term, "log10 loss": math.log10(v)} for term, v in
                     (("content", ev.content_loss), ("style", ev.style_loss), ("variation", ev.tv_loss))
                     if math.isfinite(v) and v > 0]
        if ev.preview is not None:
            preview = previews(ev.preview)
        status = (f"<progress value='{ev.step}' max='{max(ev.total_steps, 1)}' style='width:100%'></progress>\n\n"
                  + t("style.status.progress", message=translate_message(ev.message), elapsed=f"{ev.elapsed:.0f}"))
        plot = pd.DataFrame(rows[-3000:]) if rows else None
        if ev.done:
            out = png_file(ev.image, output_dir("style") / ("stylized_partial.png" if ev.cancelled else "stylized.png"))
            note = t("style.status.stopped" if ev.cancelled else "style.status.done")
            summary = t("style.status.summary", width=ev.image.width, height=ev.image.height,
                        elapsed=f"{ev.elapsed:.0f}", content=f"{ev.content_loss:.3g}", style=f"{ev.style_loss:.3g}",
                        variation=f"{ev.tv_loss:.3g}")
            yield out, plot, f"{note} {summary}", out
            return
        yield preview, plot, status, None


def stop_style(request: gr.Request) -> str:
    """Stop this visitor's running (or queued) style transfer within one optimiser step."""
    cancel = _CANCELS.get(getattr(request, "session_hash", None) or "anonymous")
    if cancel is None:
        return t("style.stop.none", request_language(request))
    cancel.set()
    return t("style.stop.stopping", request_language(request))


@gpu
@human_errors
def show_gram(styles: list[Any] | None, layer: str, pooling: str) -> tuple[str, str]:
    """The first style image's Gram matrix at ``layer``: what the style loss asks the result to match."""
    if not styles:
        raise InvalidInputError(t("style.error.no_styles"))
    if layer not in DEFAULT_STYLE_LAYERS:
        raise InvalidInputError(t("style.gram.error.layer", layers=", ".join(DEFAULT_STYLE_LAYERS)))
    view = gram_heatmap(_image(styles[0], "style.error.no_style"), layer, _vgg(pooling if pooling in ("max", "avg") else "max"))
    path = png_file(view.image, output_dir("gram") / f"gram-{layer}.png")
    return path, t("style.gram.note", layer=layer, shown=view.channels_shown, total=view.channels_total,
                   positions=view.positions)


def _examples() -> list[list[Any]]:
    if not EXAMPLES_DIR.is_dir():
        return []
    contents = sorted(EXAMPLES_DIR.glob("content_*"))
    styles = sorted(EXAMPLES_DIR.glob("style_*"))
    return [[str(c), [str(s)]] for c, s in zip(contents, styles)] if contents and styles else []


def build_style_tab(tr: Localizer) -> None:
    tr(gr.Markdown(), value="style.lesson")
    on_gpu = pick_device().type == "cuda"
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            content = tolerate_undecodable(
                tr(gr.Image(type="filepath", image_mode=None, elem_id="style-content"), label="style.content"))
            styles = tr(gr.Gallery(type="filepath", interactive=True, columns=3, height=200, elem_id="style-images"),
                        label="style.styles")
            cw = tr(gr.Slider(-3, 3, value=0, step=0.1), label="style.content_weight")
            sw = tr(gr.Slider(-2, 4, value=round(math.log10(50), 1), step=0.1), label="style.style_weight")
            tvw = tr(gr.Slider(-3, 2, value=round(math.log10(5), 1), step=0.1), label="style.tv_weight")
            with gr.Row():
                steps = tr(gr.Slider(1, 1000, value=300 if on_gpu else 120, step=1), label="style.steps")
                size = tr(gr.Slider(64, 2048 if on_gpu else 1024, value=512 if on_gpu else 256, step=32), label="style.size")
            with tr(gr.Accordion("More options", open=False), label="style.more"):
                with gr.Row():
                    optimizer = tr(gr.Radio(["lbfgs", "adam"], value="lbfgs"), label="style.optimizer",
                                   choices=[("style.optimizer.lbfgs", "lbfgs"), ("style.optimizer.adam", "adam")])
                    init = tr(gr.Radio(["content", "noise", "style-noise"], value="content"), label="style.init",
                              choices=[("style.init.content", "content"), ("style.init.noise", "noise"),
                                       ("style.init.style_noise", "style-noise")])
                    pooling = tr(gr.Radio(["max", "avg"], value="max"), label="style.pooling",
                                 choices=[("style.pooling.max", "max"), ("style.pooling.avg", "avg")])
                with gr.Row():
                    preserve = tr(gr.Checkbox(), label="style.preserve_colors")
                    multiscale = tr(gr.Checkbox(), label="style.multiscale")
                with gr.Row():
                    blend = tr(gr.Textbox(), label="style.blend", placeholder="style.blend.placeholder")
                    scale = tr(gr.Slider(0.25, 2, value=1, step=0.05), label="style.scale")
            with gr.Row():
                run = tr(gr.Button(variant="primary", elem_id="style-run"), value="style.run")
                stop = tr(gr.Button(variant="stop", elem_id="style-stop"), value="style.stop")
        with gr.Column(scale=1):
            result = tr(gr.Image(type="pil", format="png", interactive=False, elem_id="style-result"), label="style.result")
            status = gr.Markdown(elem_id="style-status")
            stop_note = gr.Markdown(elem_id="style-stop-note")
            plot = tr(gr.LinePlot(x="step", y="log10 loss", color="term", height=220), label="style.plot")
            download = tr(gr.File(interactive=False), label="style.download")
            with tr(gr.Accordion("Gram matrix", open=False, elem_id="style-gram-section"), label="style.gram.section"):
                tr(gr.Markdown(), value="style.gram.intro")
                with gr.Row():
                    gram_layer = tr(gr.Dropdown(list(DEFAULT_STYLE_LAYERS), value="relu2_1", elem_id="style-gram-layer"),
                                    label="style.gram.layer")
                    gram_btn = tr(gr.Button(elem_id="style-gram-show"), value="style.gram.show")
                gram_image = tr(gr.Image(type="filepath", interactive=False, elem_id="style-gram", elem_classes=["pixelated"]),
                                label="style.gram.image")
                gram_note = gr.Markdown(elem_id="style-gram-note")
    examples = _examples()
    if examples:
        gallery = gr.Examples(examples, [content, styles], label=t("style.examples", "en"))
        tr(gallery.dataset, label="style.examples", headers=["style.content", "style.styles"])
        keep_page_language(gallery)
    inputs = [content, styles, cw, sw, tvw, steps, size, optimizer, init, preserve, multiscale, blend, scale, pooling]
    run.click(arm_stop, None, None, queue=False, api_visibility="private").then(
        run_style, inputs, [result, plot, status, download], api_name="stylize",
        show_progress_on=[status])  # the live preview stays visible; a failure gets one badge, by the status
    stop.click(stop_style, None, stop_note, api_name="stop_style", queue=False)
    gram_btn.click(show_gram, [styles, gram_layer, pooling], [gram_image, gram_note], api_name="gram_matrix",
                   show_progress_on=[gram_image])
