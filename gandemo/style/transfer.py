"""``stylize``: content + style images -> an iterator of progress events, the last carrying the result.

    from gandemo.style import StyleSettings, stylize
    for event in stylize(content, [style], StyleSettings(size=512, steps=300)):
        print(event.step, event.total_steps, event.total_loss)
    result = event.image      # PIL RGB at full output size (also on a cancelled run: the partial result)

The loop is plain code: build the network once, then per scale (256 -> 512 -> ... with ``multiscale``)
compute targets, initialise, and take optimiser steps, yielding an event after each one.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence

import torch
from PIL import Image

from ..device import pick_device
from ..errors import InvalidInputError
from .inputs import (
    ImageInput,
    fit_long_side,
    load_image,
    luminance,
    match_luminance,
    pil_to_tensor,
    resize,
    resize_tensor,
    tensor_to_pil,
    with_chroma_of,
)
from .layers import layer_index
from .losses import StyleObjective
from .optimize import CancelFlag, Cancelled, Stepper, as_cancel_check, choose_precision, initial_image
from .settings import ABSOLUTE_MAX_SIDE, MIN_SIDE, StyleEvent, StyleSettings, style_image_name
from .vgg import VGGFeatures, load_vgg19

# Peak bytes per output pixel: VGG19 activations to relu5_1 kept for the backward pass and their
# gradients (about 3.4 KB measured on CPU at 512 px), plus L-BFGS' full history (2 x 100 vectors of
# 3 floats: 2.4 KB). 8 KB leaves some headroom.
BYTES_PER_PIXEL = 8 * 1024


def max_output_side(device: torch.device) -> int:
    """The largest long side (px, multiple of 64) a square output can have on ``device``'s free memory."""
    free: int | None = None
    try:
        if device.type == "cuda":
            free = torch.cuda.mem_get_info(device)[0]
        elif device.type == "mps":
            free = int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
        else:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError, RuntimeError):
        free = None
    if not free or free <= 0:
        return 1024
    side = int(math.sqrt(0.8 * free / BYTES_PER_PIXEL)) // 64 * 64
    return max(MIN_SIDE * 4, min(ABSOLUTE_MAX_SIDE, side))


def plan_sizes(content_size: tuple[int, int], settings: StyleSettings, max_side: int) -> list[tuple[int, int]]:
    """The (w, h) of each scale, coarse to fine; the last is the output size."""
    long_side = min(settings.size, max_side)
    sides = [long_side]
    if settings.multiscale:
        while sides[0] // 2 >= settings.multiscale_start:
            sides.insert(0, sides[0] // 2)
    sizes = [fit_long_side(content_size, s) for s in sides]
    w, h = sizes[0]
    if min(w, h) < MIN_SIDE:
        raise InvalidInputError(
            f"The content image is too narrow: {content_size[0]}x{content_size[1]} becomes {w}x{h} px, and the "
            f"network needs at least {MIN_SIDE} px on each side. Crop it or raise the output size.")
    return sizes


def style_size(style: Image.Image, long_side: int, scale: float) -> tuple[int, int]:
    """Size of a style image for a working long side: ``scale`` x that side, at least MIN_SIDE short side."""
    w, h = fit_long_side(style.size, max(MIN_SIDE, round(long_side * scale)))
    if min(w, h) < MIN_SIDE:
        k = MIN_SIDE / min(w, h)
        w, h = max(MIN_SIDE, round(w * k)), max(MIN_SIDE, round(h * k))
    return w, h


def stylize(content: ImageInput, styles: Sequence[ImageInput], settings: StyleSettings | None = None,
            cancel: CancelFlag = None, *, device: torch.device | str | None = None,
            vgg: VGGFeatures | None = None) -> Iterator[StyleEvent]:
    """Validate inputs now (InvalidInputError at once), then return the iterator that does the work.

    ``cancel`` (a ``threading.Event`` or a callable) is checked before every step and inside every
    optimiser evaluation; once set, the run stops within one network pass and the last event has
    ``cancelled=True`` with the image as far as it got. ``vgg`` reuses an already loaded network (it is
    moved to ``device`` and its memory format set for the run); without it the network is built from
    ``settings.vgg_weights`` / ``$GANDEMO_VGG_WEIGHTS`` / the Hub, the file's tensors cached in memory.
    """
    settings = settings or StyleSettings()
    styles = list(styles)
    settings = settings.checked(n_styles=len(styles))  # the number of styles too
    content_image = load_image(content, "content image")
    style_images = [load_image(s, style_image_name(i, len(styles)))
                    for i, s in enumerate(styles)]
    blend = list(settings.style_blend or [1.0] * len(styles))
    kept = [(img, w / sum(blend)) for img, w in zip(style_images, blend, strict=True) if w > 0]
    dev = torch.device(device) if device is not None else pick_device()
    max_side = settings.max_size or max_output_side(dev)
    sizes = plan_sizes(content_image.size, settings, max_side)
    return _run(content_image, kept, settings, sizes, as_cancel_check(cancel), dev, vgg)


def _run(content_image: Image.Image, styles: list[tuple[Image.Image, float]], settings: StyleSettings,
         sizes: list[tuple[int, int]], cancelled: Callable[[], bool], device: torch.device,
         vgg: VGGFeatures | None) -> Iterator[StyleEvent]:
    start = time.perf_counter()
    total_steps = settings.steps * len(sizes)
    deepest = max(settings.content_layers + settings.style_layers, key=layer_index)
    note = ""
    if max(sizes[-1]) < settings.size:
        note = f" (output limited to {max(sizes[-1])} px on this device)"
    reuse = vgg is not None and vgg.pooling == settings.pooling and layer_index(vgg.last_layer) >= layer_index(deepest)
    yield StyleEvent(0, total_steps, 0, len(sizes), sizes[0], elapsed=0.0,
                     message=f"{'Preparing' if reuse else 'Loading VGG19 weights'}{note}…")
    if vgg is None or not reuse:
        vgg = load_vgg19(settings.vgg_weights, deepest, settings.pooling, device)
    vgg = vgg.to(device)
    low_precision = choose_precision(device, settings.precision)
    # channels-last pays off with oneDNN's bfloat16 kernels and on CUDA; float32 on CPU is faster without
    channels_last = device.type == "cuda" or (device.type == "cpu" and low_precision is not None)
    vgg = vgg.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    objective = StyleObjective(
        vgg, settings.content_layers, settings.style_layers,
        settings.style_layer_weights or [1.0] * len(settings.style_layers),
        settings.content_weight, settings.style_weight, settings.tv_weight,
        channels_last=channels_last, autocast_dtype=low_precision)
    generator = torch.Generator().manual_seed(settings.seed)

    def event(**kw: object) -> StyleEvent:
        return StyleEvent(total_steps=total_steps, num_scales=len(sizes), elapsed=time.perf_counter() - start, **kw)  # type: ignore[arg-type]

    step = 0
    x: torch.Tensor | None = None
    content_rgb = pil_to_tensor(resize(content_image, sizes[-1]), device)
    for scale, size in enumerate(sizes):
        content_t = resize_tensor(content_rgb, size) if size != sizes[-1] else content_rgb
        style_ts = [pil_to_tensor(resize(img, style_size(img, max(size), settings.style_scale)), device)
                    for img, _ in styles]
        if settings.preserve_colors:
            content_y = luminance(content_t)
            style_ts = [match_luminance(luminance(s), content_y).expand(-1, 3, -1, -1) for s in style_ts]
            target_content = content_y.expand(-1, 3, -1, -1)
        else:
            target_content = content_t
        objective.set_targets(target_content, style_ts, [w for _, w in styles])
        if x is None:
            x = initial_image(settings.init, target_content, style_ts, [w for _, w in styles], generator)
        else:
            x = resize_tensor(x, size).clamp(0, 1)
        if settings.preserve_colors and x.shape[1] == 3:
            x = luminance(x)  # optimise one luminance channel, shown to the network as gray RGB
        x = x.detach().clone().requires_grad_(True)

        def render(image: torch.Tensor, _content: torch.Tensor = content_t) -> Image.Image:
            if settings.preserve_colors:
                return tensor_to_pil(with_chroma_of(image.detach().clamp(0, 1), _content))
            return tensor_to_pil(image)

        where = f"scale {scale + 1}/{len(sizes)} ({size[0]}x{size[1]}): " if len(sizes) > 1 else ""
        stepper = Stepper(settings.optimizer, objective, x, cancelled, settings.learning_rate)
        unchanged, last_total = 0, math.nan
        for i in range(settings.steps):
            try:
                if cancelled():
                    raise Cancelled
                c, s, tv, total = stepper()
            except Cancelled:
                yield _finish(event, objective, stepper.result(), render, step, scale, size, cancelled=True)
                return
            step += 1
            show = i == settings.steps - 1 or (settings.preview_every and step % settings.preview_every == 0)
            yield event(step=step, scale=scale, size=size, content_loss=c, style_loss=s, tv_loss=tv,
                        total_loss=total, preview=render(x) if show else None,
                        message=f"{where}step {i + 1}/{settings.steps}, loss {total:.4g}")
            unchanged = unchanged + 1 if total == last_total else 0
            last_total = total
            if unchanged >= 3 or not math.isfinite(total):  # converged (or diverged): stop this scale early
                step += settings.steps - 1 - i
                break
        x = stepper.result()
    assert x is not None
    yield _finish(event, objective, x, render, step, len(sizes) - 1, sizes[-1], cancelled=False)


def _finish(event: Callable[..., StyleEvent], objective: StyleObjective, x: torch.Tensor,
            render: Callable[[torch.Tensor], Image.Image], step: int, scale: int, size: tuple[int, int],
            cancelled: bool) -> StyleEvent:
    """The last event: the final losses measured on the clamped result, and the result itself."""
    final = x.detach().clamp(0, 1)
    autocast, objective.autocast_dtype = objective.autocast_dtype, None
    try:  # measured in float32, whatever precision the steps used
        with torch.no_grad():
            c, s, tv, total = objective(final.expand(-1, 3, -1, -1)).floats()
    finally:
        objective.autocast_dtype = autocast
    image = render(final)
    word = "Stopped" if cancelled else "Done"
    return event(step=step, scale=scale, size=size, content_loss=c, style_loss=s, tv_loss=tv, total_loss=total,
                 preview=image, image=image, done=True, cancelled=cancelled,
                 message=f"{word} after {step} steps: loss {total:.4g}, {image.width}x{image.height} px")
