"""Latent-space exploration: seeded sample grids and interpolation frames.

These are the core functions behind the Generate tab, the CLI's ``sample``/``interpolate`` and
the ``/generate`` and ``/interpolate`` endpoints. They validate their arguments and raise
InvalidInputError with a sentence a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from .gan.latent import interpolate_latents, latents_for_seeds
from .generator import Generator
from .images import make_grid, save_animation, to_pil_list
from .limits import check_count, check_interpolation, check_seed, check_truncation

__all__ = ["LayerShape", "SampleGrid", "check_seed", "check_truncation", "frame_strip", "interpolation_frames",
           "interpolation_latents", "latent_chart", "layer_shapes", "sample_grid", "write_animation"]


@dataclass
class SampleGrid:
    seeds: list[int]
    images: torch.Tensor  # (N, C, H, W) in [-1, 1]
    grid: Image.Image  # native resolution
    columns: int

    def cell_seed(self, x: int, y: int, cell_size: int) -> int | None:
        """The seed of the grid cell under pixel (x, y) of a grid drawn with ``cell_size`` px cells."""
        col, row = x // cell_size, y // cell_size
        if not (0 <= col < self.columns):
            return None
        i = row * self.columns + col
        return self.seeds[i] if 0 <= i < len(self.seeds) else None


def sample_grid(
    gen: Generator, seed: int = 0, num: int = 16, truncation: float | None = None, columns: int | None = None
) -> SampleGrid:
    """``num`` images for seeds seed, seed+1, ..., tiled into one grid."""
    seed, num = check_seed(seed), check_count(num)
    seeds = list(range(seed, seed + num))
    images = gen.sample(seeds, check_truncation(truncation))
    cols = columns or (num if num <= 8 else int(round(num**0.5 + 0.49)))
    cols = max(1, min(cols, num))
    return SampleGrid(seeds, images, make_grid(images, columns=cols), cols)


def interpolation_latents(
    gen: Generator,
    seeds: list[int],
    frames: int,
    method: str = "slerp",
    loop: bool = False,
    truncation: float | None = None,
) -> torch.Tensor:
    """Latents for a walk through ``seeds`` with ``frames`` frames in total (a loop returns to the
    first seed without repeating it, so the animation repeats seamlessly)."""
    seeds, frames = check_interpolation(seeds, frames, method, loop)
    z = latents_for_seeds(seeds, gen.latent_dim, check_truncation(truncation))
    points = list(z) + ([z[0]] if loop else [])
    segments = len(points) - 1
    # An open path has frames-1 steps plus its end point; a loop has `frames` steps and no end point
    # (the first frame follows the last). Steps are spread over the segments as evenly as possible.
    steps = frames if loop else frames - 1
    per = [steps // segments + (1 if i < steps % segments else 0) for i in range(segments)]
    parts = [interpolate_latents(points[i], points[i + 1], per[i], method, endpoint=False) for i in range(segments)]
    if not loop:
        parts.append(points[-1][None])
    return torch.cat(parts)


def interpolation_frames(
    gen: Generator,
    seeds: list[int],
    frames: int,
    method: str = "slerp",
    loop: bool = False,
    truncation: float | None = None,
) -> list[Image.Image]:
    """PIL frames of an interpolation through ``seeds`` (see interpolation_latents)."""
    return to_pil_list(gen(interpolation_latents(gen, seeds, frames, method, loop, truncation)))


def frame_strip(frames: list[Image.Image], max_columns: int = 12) -> Image.Image:
    """Frames side by side (wrapping after ``max_columns``), for a quick overview."""
    import numpy as np

    arr = np.stack([np.asarray(f) for f in frames])
    if arr.ndim == 3:
        arr = arr[..., None]
    t = torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    return make_grid(t, columns=min(max_columns, len(frames)))


def write_animation(frames: list[Image.Image], path: str | Path, fps: float = 12.0, scale: int = 1) -> Path:
    from .images import upscale

    return save_animation([upscale(f, scale) for f in frames], path, fps=fps)


@dataclass
class LayerShape:
    """One layer of a generator and the shape of what comes out of it, for one latent vector."""

    name: str
    kind: str
    shape: tuple[int, ...]
    parameters: int


def layer_shapes(gen: Generator) -> list[LayerShape]:
    """Run one latent vector through the generator and record every leaf layer's output shape:
    a DCGAN grows a 1x1 'image' of latent_dim channels into the full picture, doubling the size at
    each transposed convolution."""
    shapes: list[LayerShape] = []
    hooks = []
    for name, module in gen.module.named_modules():
        if list(module.children()):
            continue

        def record(mod: torch.nn.Module, _inputs: object, output: object, name: str = name) -> None:
            if isinstance(output, torch.Tensor):
                params = sum(p.numel() for p in mod.parameters(recurse=False))
                shapes.append(LayerShape(name, type(mod).__name__, tuple(output.shape[1:]), params))

        hooks.append(module.register_forward_hook(record))
    try:
        gen(torch.zeros(1, gen.latent_dim))
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


def latent_chart(z: torch.Tensor, highlight: list[int], width: int = 640, height: int = 120) -> Image.Image:
    """A bar chart of a latent vector's values (one bar per dimension, in [-3, 3]); the dimensions a
    person is steering are drawn in orange."""
    values = z.flatten().tolist()
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    mid = height // 2
    draw.line((0, mid, width, mid), fill=(180, 180, 180))
    bar = width / max(len(values), 1)
    for i, v in enumerate(values):
        top = mid - max(-3.0, min(3.0, v)) / 3 * (mid - 4)
        colour = (235, 130, 20) if i in highlight else (90, 110, 200)
        draw.rectangle((i * bar, min(mid, top), max(i * bar, (i + 1) * bar - 1), max(mid, top)), fill=colour)
    return image
