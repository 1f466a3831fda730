"""Latent vectors: seeded sampling, truncation and interpolation.

Every image in the app has a seed: a grid seeded with S shows seeds S, S+1, ..., so any
cell can be named by its seed and used as an end point of an interpolation.
"""

from __future__ import annotations

import torch

from ..limits import MAX_SEED


def latent_for_seed(seed: int, latent_dim: int, truncation: float | None = None) -> torch.Tensor:
    """The standard-normal latent vector (latent_dim,) that ``seed`` names, optionally truncated."""
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    rng = torch.Generator().manual_seed(int(seed))
    z = torch.randn(latent_dim, generator=rng)
    if truncation is not None:
        z = truncate(z, truncation, rng)
    return z


def latents_for_seeds(seeds: list[int], latent_dim: int, truncation: float | None = None) -> torch.Tensor:
    return torch.stack([latent_for_seed(s, latent_dim, truncation) for s in seeds])


def truncate(z: torch.Tensor, threshold: float, rng: torch.Generator | None = None, max_rounds: int = 1000) -> torch.Tensor:
    """The truncation trick (BigGAN): redraw every entry with |z| > threshold until none is left.

    The result is a sample from the standard normal truncated to [-threshold, threshold]:
    lower thresholds trade variety for typical, cleaner images.
    """
    if threshold <= 0:
        raise ValueError(f"truncation must be positive, got {threshold}")
    z = z.clone()
    for _ in range(max_rounds):
        outside = z.abs() > threshold
        if not outside.any():
            return z
        z[outside] = torch.randn(int(outside.sum()), generator=rng)
    return z.clamp(-threshold, threshold)  # only for absurdly small thresholds


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Straight line from a (t=0) to b (t=1)."""
    scalar = torch.as_tensor(t).dim() == 0
    t = torch.as_tensor(t, dtype=a.dtype).reshape(-1, *([1] * a.dim()))
    out = a + t * (b - a)
    return out[0] if scalar else out


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the great circle between a and b (norms interpolated linearly).

    Gaussian latents live near a sphere of radius sqrt(dim); a straight line cuts through
    the low-density inside of that sphere, which is why lerp midpoints often look washed out.
    """
    scalar = torch.as_tensor(t).dim() == 0
    t = torch.as_tensor(t, dtype=a.dtype).reshape(-1, *([1] * a.dim()))
    na, nb = a.norm(), b.norm()
    ua, ub = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    omega = torch.arccos((ua * ub).sum().clamp(-1 + eps, 1 - eps))
    so = torch.sin(omega)
    if so.abs() < 1e-6:  # (anti)parallel: the plane is undefined, fall back to a straight line
        out = ua + t * (ub - ua)
    else:
        out = (torch.sin((1 - t) * omega) / so) * ua + (torch.sin(t * omega) / so) * ub
    out = out * (na + t * (nb - na))
    return out[0] if scalar else out


def interpolate_latents(a: torch.Tensor, b: torch.Tensor, frames: int, method: str = "slerp", endpoint: bool = True) -> torch.Tensor:
    """``frames`` latents from a to b, shape (frames, dim). ``endpoint=False`` leaves b out
    (for chaining segments into a seamless loop)."""
    if frames < (2 if endpoint else 1):
        raise ValueError(f"need at least {2 if endpoint else 1} frames, got {frames}")
    if method not in ("lerp", "slerp"):
        raise ValueError(f"method must be 'lerp' or 'slerp', got {method!r}")
    t = torch.linspace(0, 1, frames + (0 if endpoint else 1))[:frames]
    fn = slerp if method == "slerp" else lerp
    return fn(a, b, t)


def latent_walk(latents: torch.Tensor, frames_per_segment: int, method: str = "slerp", loop: bool = True) -> torch.Tensor:
    """Visit the waypoints in order (and back to the first when ``loop``), with no repeated frame
    where segments meet, so an animation of it plays seamlessly on repeat."""
    points = list(latents)
    if loop:
        points.append(points[0])
    parts = [interpolate_latents(p, q, frames_per_segment, method, endpoint=False) for p, q in zip(points, points[1:])]
    if not loop:
        parts.append(points[-1][None])
    return torch.cat(parts)
