"""What the GAN will learn from: the usable images after intake, tiled into one contact sheet.

    sheet = contact_sheet(["a.png", "photos.zip"], IntakeOptions(size=32, fit="crop"))
    sheet.image      # PIL image: up to 64 of the images, each exactly the size x size pixels the
                     # trainer gets (same intake: decode, orientation, crop or pad, resize, channels)
    sheet.usable, sheet.files, sheet.skipped   # "40 files: 37 usable, 3 skipped (...)"

The images are read by :func:`gandemo.intake.load_images`, the trainer's own path, with the same
options: a tile is the training tensor's pixels, not a separate thumbnail. Too few images is not an
error here (the sheet says what there is); the trainer still refuses fewer than ``min_images``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from PIL import Image

from gandemo.intake import load_images
from gandemo.intake.options import IntakeOptions
from gandemo.intake.sources import Sources

MODES = {1: "LA", 3: "RGBA", 4: "RGBA"}  # the sheet's mode for 1, 3 or 4 channels: gaps are transparent
SHEET_LIMIT = 64  # the most images one sheet shows; a bigger set is sampled evenly
GAP = 2  # pixels between tiles


@dataclass
class ContactSheet:
    """A contact sheet of a training set and what intake made of the upload.

    image: the tiles at their training size (None when no file was usable); ``columns`` x ``rows``
        cells of ``size`` px with ``gap`` px between them.
    shown: the file (or zip entry) of each tile, in order; ``usable``: all usable images (the sheet
        shows up to ``limit`` of them); ``files``: usable + skipped.
    """

    image: Image.Image | None
    size: int
    columns: int
    rows: int
    gap: int
    shown: list[str]
    usable: int
    files: int
    channels: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def tile_box(self, index: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of tile ``index`` on the sheet."""
        row, col = divmod(index, self.columns)
        left, top = col * (self.size + self.gap), row * (self.size + self.gap)
        return left, top, left + self.size, top + self.size


def sample_indices(n: int, limit: int) -> list[int]:
    """At most ``limit`` of ``range(n)``, spread evenly from the first to the last (all of them when n <= limit)."""
    if limit <= 0 or n <= 0:
        return []
    if n <= limit:
        return list(range(n))
    if limit == 1:
        return [0]
    return [round(i * (n - 1) / (limit - 1)) for i in range(limit)]


def sheet_columns(n: int) -> int:
    """Columns for ``n`` tiles: about twice as wide as tall (it fits a page column), with the fewest empty
    cells in the last row."""
    if n <= 2:
        return max(1, n)
    target = math.sqrt(2 * n)
    candidates = range(max(1, math.floor(target * 0.75)), min(n, math.ceil(target * 1.35)) + 1)
    return min(candidates, key=lambda cols: cols * math.ceil(n / cols) - n + 2 * abs(cols - target))


def tile(images: torch.Tensor, columns: int | None = None, gap: int = GAP, rows: int | None = None) -> Image.Image:
    """uint8 (N, C, H, W) images (C = 1, 3 or 4) side by side, row by row, ``gap`` px apart, unchanged
    pixel for pixel, on a transparent sheet (mode LA for gray images, else RGBA): gaps and empty cells
    show the page behind. Opaque images (C = 1 or 3) get an opaque alpha channel. ``rows``: at least
    this many rows (a grid the shape of another one, with empty cells at the end)."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in MODES or images.shape[0] == 0:
        raise ValueError(f"tile() takes uint8 (N, 1|3|4, H, W) images with N > 0, got {tuple(images.shape)} "
                         f"{images.dtype}")
    n, c, h, w = images.shape
    cols = max(1, columns) if columns else sheet_columns(n)
    rows = max(math.ceil(n / cols), rows or 0)
    out = 2 if c == 1 else 4
    canvas = np.zeros((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, out), np.uint8)
    pixels = images.detach().cpu().permute(0, 2, 3, 1).numpy()
    for i in range(n):
        row, col = divmod(i, cols)
        y, x = row * (h + gap), col * (w + gap)
        canvas[y: y + h, x: x + w, :c] = pixels[i]
        if c < 4:
            canvas[y: y + h, x: x + w, -1] = 255
    return Image.fromarray(canvas, MODES[c])


def contact_sheet(sources: Sources, options: IntakeOptions | None = None, limit: int = SHEET_LIMIT,
                  gap: int = GAP) -> ContactSheet:
    """Read ``sources`` exactly as training would with ``options`` and tile up to ``limit`` of the usable
    images (evenly sampled from a bigger set) at their training size. Fewer than ``options.min_images``
    usable images is not an error here: the sheet shows what there is."""
    options = replace(options or IntakeOptions(), min_images=0, device="cpu")
    data = load_images(sources, options)
    files = len(data.names) + len(data.skipped)
    picked = sample_indices(len(data), limit)
    if not picked:
        return ContactSheet(None, options.size, 0, 0, gap, [], 0, files, data.channels, data.skipped, data.ignored,
                            data.warnings)
    columns = sheet_columns(len(picked))
    image = tile(data.images[picked], columns, gap)
    return ContactSheet(image, data.size, columns, math.ceil(len(picked) / columns), gap,
                        [data.names[i] for i in picked], len(data), files, data.channels, data.skipped, data.ignored,
                        data.warnings)
