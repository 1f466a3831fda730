"""How well the generated points match the data: pure functions on point sets.

- Mode coverage (Gaussian mixtures), as in the Unrolled-GAN / VEEGAN / PacGAN 2D experiments:
  a sample is *high quality* if it lies within 3 sigma of some mode centre; a mode is *covered*
  if at least ``min_count`` high-quality samples are nearest to it. The default ``min_count`` is
  1% of the samples (20 of 2000), PacGAN's 20-of-2500 rule scaled, so a few stray points
  passing through a mode while G hops between others don't count as covering it.
- Density distance (any data): the Jensen-Shannon divergence, base 2 so it lies in [0, 1],
  between the 2D histograms of the real and generated points on a 32x32 grid over the view.
  0 = same histogram, 1 = disjoint supports. Points outside the view count in the border cells,
  so a G that flies off the screen is not ignored.
"""

from __future__ import annotations

import math

import torch

from .data import VIEW

GRID_BINS = 32


def default_min_count(n_samples: int) -> int:
    return max(1, math.ceil(0.01 * n_samples))


def mode_coverage(
    samples: torch.Tensor, modes: torch.Tensor, sigma: float, min_count: int | None = None
) -> tuple[int, int, float]:
    """(modes covered, modes total, share of high-quality samples) for ``samples`` (N, 2)."""
    samples = torch.as_tensor(samples, dtype=torch.float32).reshape(-1, 2)
    modes = torch.as_tensor(modes, dtype=torch.float32).reshape(-1, 2)
    if len(samples) == 0:
        return 0, len(modes), 0.0
    threshold = default_min_count(len(samples)) if min_count is None else min_count
    dist, nearest = torch.cdist(samples, modes).min(1)
    good = dist <= 3 * sigma
    counts = torch.bincount(nearest[good], minlength=len(modes))
    return int((counts >= threshold).sum()), len(modes), float(good.float().mean())


def histogram2d(points: torch.Tensor, bins: int = GRID_BINS, half_width: float = VIEW) -> torch.Tensor:
    """Normalised (bins, bins) histogram of ``points`` over [-half_width, half_width]^2."""
    pts = torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2)
    cells = ((pts + half_width) / (2 * half_width) * bins).floor().long().clamp(0, bins - 1)
    flat = cells[:, 1] * bins + cells[:, 0]
    hist = torch.bincount(flat, minlength=bins * bins).float()
    return (hist / hist.sum().clamp_min(1)).reshape(bins, bins)


def density_distance(real: torch.Tensor, fake: torch.Tensor, bins: int = GRID_BINS) -> float:
    """Jensen-Shannon divergence (bits, in [0, 1]) between the two point sets' 2D histograms."""
    p, q = histogram2d(real, bins).flatten(), histogram2d(fake, bins).flatten()
    m = (p + q) / 2

    def kl(a: torch.Tensor) -> torch.Tensor:
        nz = a > 0  # 0 * log 0 = 0; m > 0 wherever a > 0
        return (a[nz] * (a[nz] / m[nz]).log2()).sum()

    return float(((kl(p) + kl(q)) / 2).clamp(0, 1))


def point_spread(points: torch.Tensor) -> float:
    """Mean distance of the points from their centre: small = collapsed."""
    pts = torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2)
    return float((pts - pts.mean(0)).norm(dim=1).mean())


def oscillation(values: list[float] | list[tuple[float, float]]) -> float:
    """Mean size of the step-to-step change of a series of numbers or of 2D positions (e.g. the
    generated points' centre, logged every few steps): near 0 once training has settled, large
    while it keeps swinging."""
    if len(values) < 2:
        return 0.0
    t = torch.tensor(values, dtype=torch.float64)
    t = t.reshape(len(values), -1)
    return float((t[1:] - t[:-1]).norm(dim=1).mean())
