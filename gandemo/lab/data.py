"""Toy 2D data sets for the lab: what the real distribution looks like on the plane.

Everything lives in the square view [-1.5, 1.5]^2 that the renderer draws, so a point's
position means the same on the screen, in the metrics and in the networks' inputs.
Gaussian mixtures (ring, grid, clusters) keep their mode centres and sigma: the metrics need
them to count covered modes, and ``ToyData.sample`` draws fresh mixture samples every batch,
as in the Unrolled-GAN / VEEGAN experiments, instead of replaying a finite set.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import InvalidInputError
from .config import DATASETS, MAX_POINTS, MIN_POINTS

VIEW = 1.5  # half-width of the square view
# Custom points are fitted into this half-width, leaving a margin inside the view.
FIT_HALF_WIDTH = 1.2
# Jitter for data sets stored as a finite point set: enough that D can't memorise points.
JITTER = 0.01


@dataclass
class ToyData:
    """A real distribution on the plane.

    ``points`` (N, 2) is a fixed, seeded sample (drawn by the renderer and used by the metrics);
    ``modes`` (M, 2), ``sigma`` and ``weights`` (M,) describe a Gaussian mixture, or are None.
    """

    name: str
    points: torch.Tensor
    modes: torch.Tensor | None = None
    sigma: float | None = None
    weights: torch.Tensor | None = None

    @property
    def is_mixture(self) -> bool:
        return self.modes is not None and self.sigma is not None

    def sample(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """A fresh (batch, 2) batch: new mixture draws, or stored points with a small jitter."""
        if self.is_mixture:
            return _mixture(self.modes, self.sigma, self.weights, batch, generator)
        idx = torch.randint(len(self.points), (batch,), generator=generator)
        return self.points[idx] + JITTER * torch.randn(batch, 2, generator=generator)


def _mixture(
    modes: torch.Tensor, sigma: float, weights: torch.Tensor | None, n: int, generator: torch.Generator
) -> torch.Tensor:
    if weights is None:
        idx = torch.randint(len(modes), (n,), generator=generator)
    else:
        idx = torch.multinomial(weights, n, replacement=True, generator=generator)
    return modes[idx] + sigma * torch.randn(n, 2, generator=generator)


def ring_modes(count: int = 8, radius: float = 1.0) -> torch.Tensor:
    angles = torch.arange(count, dtype=torch.float64) * (2 * math.pi / count)
    return (radius * torch.stack([angles.cos(), angles.sin()], 1)).float()


def grid_modes(side: int = 5, spacing: float = 0.5) -> torch.Tensor:
    ticks = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    ys, xs = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], 1)


# Three blobs of uneven weight, far apart: the "disjoint supports" case (G must jump gaps).
CLUSTER_MODES = torch.tensor([[-0.9, -0.6], [0.8, -0.7], [0.1, 0.9]])
CLUSTER_WEIGHTS = torch.tensor([0.5, 0.3, 0.2])


def make_dataset(name: str, n: int = 512, seed: int = 0, points: torch.Tensor | None = None) -> ToyData:
    """The seeded toy data set ``name`` (one of :data:`DATASETS`) with ``n`` stored points.

    ring: 8 Gaussians (sigma 0.05) on a circle of radius 1; grid: 5x5 Gaussians (sigma 0.05,
    spacing 0.5); clusters: 3 uneven Gaussians (sigma 0.1); moons, spiral, line: curves with a
    little noise; custom: ``points`` (e.g. from :func:`points_from_text`) fitted into the view.
    """
    if name not in DATASETS:
        raise InvalidInputError(f"Unknown data set '{name}'; choose one of: {', '.join(DATASETS)}.")
    if not MIN_POINTS <= n <= MAX_POINTS:
        raise InvalidInputError(f"The number of points must be between {MIN_POINTS} and {MAX_POINTS}, got {n}.")
    g = torch.Generator().manual_seed(seed)
    if name == "custom":
        if points is None:
            raise InvalidInputError("The custom data set needs points: type, paste or draw at least 8.")
        fitted = fit_to_view(points)
        # Keep every user point when there are fewer than n; otherwise a seeded subset.
        stored = fitted if len(fitted) <= n else fitted[torch.randperm(len(fitted), generator=g)[:n]]
        return ToyData(name, stored)
    if name in ("ring", "grid", "clusters"):
        modes, sigma, weights = {
            "ring": (ring_modes(), 0.05, None),
            "grid": (grid_modes(), 0.05, None),
            "clusters": (CLUSTER_MODES.clone(), 0.1, CLUSTER_WEIGHTS.clone()),
        }[name]
        return ToyData(name, _mixture(modes, sigma, weights, n, g), modes, sigma, weights)
    t = torch.rand(n, generator=g)
    noise = torch.randn(n, 2, generator=g)
    if name == "moons":
        upper = torch.rand(n, generator=g) < 0.5
        angle = t * math.pi
        x = torch.where(upper, angle.cos(), 1 - angle.cos())
        y = torch.where(upper, angle.sin(), 0.5 - angle.sin())
        # sklearn's moons span x in [-1, 2], y in [-0.5, 1]: centre and scale them into the view.
        pts = torch.stack([(x - 0.5) * 0.9, (y - 0.25) * 0.9], 1) + 0.04 * noise
    elif name == "spiral":
        angle = 0.5 + t * 3.5 * math.pi
        radius = 0.1 + 1.2 * t
        pts = torch.stack([radius * angle.cos(), radius * angle.sin()], 1) + 0.03 * noise
    else:  # line: a diagonal segment, the simplest 1D manifold a 2D noise must fold onto
        s = 2 * t - 1
        pts = torch.stack([1.1 * s, 0.8 * s], 1) + 0.02 * noise
    return ToyData(name, pts)


def fit_to_view(points: torch.Tensor) -> torch.Tensor:
    """Centre ``points`` on their bounding box and scale the larger side to fill the view.

    The aspect ratio is kept, so a drawn circle stays a circle.
    """
    pts = torch.as_tensor(points, dtype=torch.float32)
    _check_count(len(pts))
    lo, hi = pts.min(0).values, pts.max(0).values
    half = float((hi - lo).max()) / 2
    if not math.isfinite(half) or half <= 0:
        raise InvalidInputError("The points are all the same; give points that spread out on the plane.")
    return (pts - (lo + hi) / 2) * (FIT_HALF_WIDTH / half)


def _check_count(count: int) -> None:
    if count < MIN_POINTS:
        raise InvalidInputError(f"Give at least {MIN_POINTS} points, got {count}.")
    if count > MAX_POINTS:
        raise InvalidInputError(f"Give at most {MAX_POINTS} points, got {count}.")


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR = re.compile(rf"^\s*({_NUMBER})\s*,\s*({_NUMBER})\s*$")


def points_from_text(text: str) -> torch.Tensor:
    """Parse "x,y" pairs, one per line or separated by ``;``, into a (N, 2) tensor.

    Blank entries are skipped. Raises :class:`InvalidInputError` naming the first bad entry, or
    for fewer than 8 or more than 5000 points.
    """
    entries = [e.strip() for e in re.split(r"[;\n]", text or "")]
    pairs: list[tuple[float, float]] = []
    for number, entry in enumerate(entries, 1):
        if not entry:
            continue
        match = _PAIR.match(entry)
        if match is None:
            raise InvalidInputError(f"Point {number} ('{entry[:40]}') is not of the form x,y with two numbers.")
        pairs.append((float(match.group(1)), float(match.group(2))))
    _check_count(len(pairs))
    return torch.tensor(pairs, dtype=torch.float32)


def points_from_sketch(image: Image.Image, n: int = 512, seed: int = 0) -> torch.Tensor:
    """Turn a drawing into up to ``n`` points: strokes become the data, the y axis points up.

    A canvas with transparent pixels (a sketchpad layer) counts opaque pixels as strokes; an
    opaque canvas counts dark pixels (luminance < 128) as strokes. The points are in canvas
    units centred on the canvas; :func:`make_dataset` fits them into the view.
    """
    rgba = np.asarray(image.convert("RGBA"))
    alpha = rgba[..., 3]
    if (alpha < 128).any():
        mask = alpha >= 128
    else:
        luminance = rgba[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        mask = luminance < 128
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        raise InvalidInputError("The sketch is empty: draw some dark strokes on the canvas.")
    rng = np.random.default_rng(seed)
    if len(rows) > n:
        keep = rng.choice(len(rows), n, replace=False)
        rows, cols = rows[keep], cols[keep]
    h, w = mask.shape
    scale = 2.0 / max(h, w)
    # Pixel centres plus sub-pixel jitter, so thin strokes don't snap onto a lattice.
    x = (cols + rng.random(len(cols))) * scale - w * scale / 2
    y = (h - rows - rng.random(len(rows))) * scale - h * scale / 2
    pts = torch.tensor(np.stack([x, y], 1), dtype=torch.float32)
    if len(pts) < MIN_POINTS:
        raise InvalidInputError(f"The sketch has only {len(pts)} stroke pixels; draw at least {MIN_POINTS}.")
    return pts
