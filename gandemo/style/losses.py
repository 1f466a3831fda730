"""The three loss terms of neural style transfer, normalised so that a weight means the same everywhere.

Normalisation (the choice the UI sliders rely on):

- **Gram matrix** ``G = F Fᵀ / (H·W)``: the mean, over positions, of the outer product of the feature
  vectors. A texture's statistics, not its area: the same style gives the same Gram matrix at
  256 or 1024 px, so ``style_scale`` and output size don't change what a style weight does.
- **Style loss of a layer** ``mean((G − A)²) / mean(A²)``, A the target Gram: the *relative* squared
  error. Layers with 64 or 512 channels, strong or weak activations, pretrained or random weights all
  start near the same order of magnitude, so per-layer weights mean what they say. The style loss is the
  weighted mean over layers (layer weights are normalised to sum to 1).
- **Content loss** ``mean((F − P)²) / mean(P²)``: relative error of the features at the content layers.
- **Total variation** ``mean(Δx²) + mean(Δy²)`` of the image in [0, 1], neighbouring pixel differences.

All three are means, never sums, so none of them grows with the number of pixels:
``total = content_weight·content + style_weight·style + tv_weight·tv`` balances the same way at any size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .vgg import VGGFeatures

_EPS = 1e-8


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C), ``F Fᵀ / (H·W)``; works on channels-last tensors without a copy."""
    n, c, h, w = features.shape
    if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
        f = features.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view for channels-last
        return torch.bmm(f.transpose(1, 2), f) / (h * w)
    f = features.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (h * w)


def relative_mse(x: torch.Tensor, target: torch.Tensor, target_energy: torch.Tensor | float) -> torch.Tensor:
    """``mean((x − target)²) / target_energy`` (target_energy is ``mean(target²)``, precomputed)."""
    return (x - target).pow(2).mean() / target_energy


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between horizontally and vertically neighbouring pixels, summed."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def energy(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean().clamp_min(_EPS)


@dataclass
class LossTerms:
    """The unweighted terms and the weighted total (tensors; ``.item()`` for numbers)."""

    content: torch.Tensor
    style: torch.Tensor
    tv: torch.Tensor
    total: torch.Tensor

    def floats(self) -> tuple[float, float, float, float]:
        values = torch.stack([self.content, self.style, self.tv, self.total]).detach().double().cpu().tolist()
        return values[0], values[1], values[2], values[3]


class StyleObjective:
    """Targets computed once per scale; ``objective(image)`` then costs one pass through the network.

    No loss modules are inserted into the network: one forward returns every layer in use, the
    losses are computed from that dictionary.
    """

    def __init__(self, vgg: VGGFeatures, content_layers: Sequence[str], style_layers: Sequence[str],
                 style_layer_weights: Sequence[float], content_weight: float, style_weight: float,
                 tv_weight: float, channels_last: bool = False, autocast_dtype: torch.dtype | None = None):
        self.vgg = vgg
        self.content_layers = list(content_layers)
        self.style_layers = list(style_layers)
        total = float(sum(style_layer_weights))
        self.style_layer_weights = [float(w) / total if total > 0 else 0.0 for w in style_layer_weights]
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        self.channels_last = channels_last
        self.autocast_dtype = autocast_dtype
        # only the layers whose terms count: a zero weight costs nothing
        self._content_used = self.content_layers if self.content_weight > 0 else []
        self._style_used = [name for name, w in zip(self.style_layers, self.style_layer_weights, strict=True)
                            if w > 0 and self.style_weight > 0]
        self.layers = list(dict.fromkeys(self._content_used + self._style_used))
        self.content_targets: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.style_targets: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def _features(self, image: torch.Tensor, layers: Sequence[str], exact: bool = False) -> dict[str, torch.Tensor]:
        if not layers:
            return {}
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        if self.autocast_dtype is None or exact:
            return self.vgg(image, layers)
        # the network in reduced precision, the Gram matrices and losses in float32
        with torch.autocast(image.device.type, dtype=self.autocast_dtype):
            feats = self.vgg(image, layers)
        return {name: f.float() for name, f in feats.items()}

    @torch.no_grad()
    def set_targets(self, content: torch.Tensor, styles: Sequence[torch.Tensor], blend: Sequence[float]) -> None:
        """Content features and blended style Gram matrices (``sum_i blend_i · G_i``, blend sums to 1).

        Always in float32: targets are computed once, so precision here is cheap.
        """
        feats = self._features(content, self._content_used, exact=True)
        self.content_targets = {name: (feats[name], energy(feats[name])) for name in self._content_used}
        grams: dict[str, torch.Tensor] = {}
        for style, weight in zip(styles, blend, strict=True):
            for name, f in self._features(style, self._style_used, exact=True).items():
                g = gram_matrix(f) * weight
                grams[name] = grams[name] + g if name in grams else g
        self.style_targets = {name: (g, energy(g)) for name, g in grams.items()}

    def __call__(self, image: torch.Tensor) -> LossTerms:
        feats = self._features(image, self.layers)
        zero = image.new_zeros(())
        content = zero
        for name in self._content_used:
            target, e = self.content_targets[name]
            content = content + relative_mse(feats[name], target, e)
        if self._content_used:
            content = content / len(self._content_used)
        style = zero
        for name, w in zip(self.style_layers, self.style_layer_weights, strict=True):
            if name in self.style_targets:
                target, e = self.style_targets[name]
                style = style + w * relative_mse(gram_matrix(feats[name]), target, e)
        tv = total_variation(image)
        total = self.content_weight * content + self.style_weight * style + self.tv_weight * tv
        return LossTerms(content, style, tv, total)
