"""DiffAugment (Zhao et al., 2020): differentiable augmentations applied to every image the
discriminator sees, real and generated alike.

With few training images the discriminator memorises them and its feedback stops being useful
to the generator. Augmenting both real and fake batches (and letting gradients flow through the
augmentation into G) keeps D from memorising without teaching G to draw augmented images.
Images are (N, C, H, W) in [-1, 1]; colour changes touch the first three channels only, never alpha.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .settings import POLICIES, parse_policy

__all__ = ["POLICIES", "diff_augment", "parse_policy", "shift_images"]


def diff_augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    for name in policy:
        x = {"color": _color, "translation": _translation, "cutout": _cutout}[name](x)
    return x


def _color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    rgb_channels = min(3, x.shape[1])
    c, rest = x[:, :rgb_channels], x[:, rgb_channels:]
    c = c + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)  # brightness
    if rgb_channels == 3:
        mean = c.mean(dim=1, keepdim=True)
        c = (c - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean  # saturation
    mean = c.mean(dim=(1, 2, 3), keepdim=True)
    c = (c - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean  # contrast
    return torch.cat([c, rest], dim=1) if rest.shape[1] else c


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ratio * size pixels, filling with the background value -1."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    return shift_images(x, dy, dx)


def shift_images(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Shift image i by (dy[i], dx[i]) pixels (both shaped (N, 1, 1)); what comes in from outside is the
    background value -1 (beyond a 1-pixel border the shift is clamped)."""
    n, _, h, w = x.shape
    ys = torch.arange(h, device=x.device).view(1, h, 1) + dy
    xs = torch.arange(w, device=x.device).view(1, 1, w) + dx
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    ys = (ys + 1).clamp(0, h + 1).expand(n, h, w)
    xs = (xs + 1).clamp(0, w + 1).expand(n, h, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1).expand(n, h, w)
    return padded.permute(0, 2, 3, 1)[batch, ys, xs].permute(0, 3, 1, 2).contiguous()


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Blank one square of (ratio * size) per image at a random position."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    y0, x0 = cy - ch // 2, cx - cw // 2
    inside = (ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)
    return torch.where(inside.unsqueeze(1), torch.zeros_like(x), x)
