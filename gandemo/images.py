"""Tensors <-> PIL images, sample grids, frame strips and animations.

Generator outputs are float tensors in [-1, 1] shaped (N, C, H, W) with C in {1, 3, 4};
they become PIL images in mode L, RGB or RGBA so grayscale stays gray and alpha stays
transparent all the way to the browser.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> uint8 array (N, H, W, C)."""
    x = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def to_pil_list(images: torch.Tensor) -> list[Image.Image]:
    arr = to_uint8(images)
    mode = MODES[arr.shape[-1]]
    return [Image.fromarray(a[..., 0] if mode == "L" else a, mode) for a in arr]


def grid_shape(n: int, columns: int | None = None) -> tuple[int, int]:
    """(rows, columns) for n cells: as square as possible unless ``columns`` is given."""
    cols = columns or math.ceil(math.sqrt(n))
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


def make_grid(images: torch.Tensor, columns: int | None = None, padding: int = 0) -> Image.Image:
    """Tile (N, C, H, W) images into one PIL image. Empty cells and padding are transparent
    for RGBA, black otherwise."""
    arr = to_uint8(images)
    n, h, w, c = arr.shape
    rows, cols = grid_shape(n, columns)
    canvas = np.zeros((rows * h + (rows - 1) * padding, cols * w + (cols - 1) * padding, c), np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        y, x = r * (h + padding), col * (w + padding)
        canvas[y: y + h, x: x + w] = arr[i]
    mode = MODES[c]
    return Image.fromarray(canvas[..., 0] if mode == "L" else canvas, mode)


def upscale(image: Image.Image, factor: int) -> Image.Image:
    """Integer nearest-neighbour upscaling: pixels stay crisp squares."""
    if factor <= 1:
        return image
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def display_scale(native_width: int, target: int = 512, max_factor: int = 16) -> int:
    """The integer factor that brings ``native_width`` closest to ``target`` without exceeding it
    (at least 1)."""
    return max(1, min(max_factor, target // max(1, native_width)))


def save_animation(
    frames: list[Image.Image], path: str | Path, fps: float = 12.0, loop: bool = True
) -> Path:
    """Write frames as an animated GIF or WebP, chosen by the file suffix.

    GIF has 1-bit transparency only, so RGBA frames keep full alpha in WebP and get a
    binary alpha (threshold 50%) in GIF.
    """
    path = Path(path)
    duration = max(20, round(1000 / fps))
    suffix = path.suffix.lower()
    if suffix == ".webp":
        frames[0].save(
            path, save_all=True, append_images=frames[1:], duration=duration, loop=0 if loop else 1,
            lossless=True,
        )
    elif suffix == ".gif":
        gif_frames = [_gif_frame(f) for f in frames]
        extra = {"transparency": 255, "disposal": 2} if frames[0].mode == "RGBA" else {}
        gif_frames[0].save(
            path, save_all=True, append_images=gif_frames[1:], duration=duration,
            loop=0 if loop else 1, optimize=False, **extra,
        )
    else:
        raise ValueError(f"animation must be .gif or .webp, got {path.name!r}")
    return path


def _gif_frame(frame: Image.Image) -> Image.Image:
    if frame.mode == "L":
        return frame
    if frame.mode == "RGBA":
        alpha = np.asarray(frame.getchannel("A"))
        pal = frame.convert("RGB").quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        idx = np.asarray(pal).copy()
        idx[alpha < 128] = 255  # palette index 255 is the transparent one
        out = Image.fromarray(idx, "P")
        palette = pal.getpalette() or []
        palette = (palette + [0] * 768)[:768]
        out.putpalette(palette)
        return out
    return frame.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
