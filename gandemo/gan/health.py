"""Training health: the classic GAN failures, measured and said in words.

Each check watches smoothed statistics and, when a failure shows, returns a message that says
what is happening and what to try. Messages are emitted once when a condition starts (and again
only after it has cleared), so a stuck run doesn't repeat itself every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class HealthMessage:
    code: str  # "collapse" | "d_overpowering" | "g_overpowering" | "non_finite" | "recovered"
    level: str  # "warning" | "error" | "info"
    text: str


def sample_diversity(images: torch.Tensor) -> float:
    """Mean pairwise L2 distance between images (per pixel): 0 when all samples are identical."""
    flat = images.detach().float().flatten(1)
    if flat.shape[0] < 2:
        return 0.0
    d = torch.cdist(flat, flat) / math.sqrt(flat.shape[1])
    n = flat.shape[0]
    return float(d.sum() / (n * (n - 1)))


@dataclass
class HealthMonitor:
    """Feed it every step's statistics and, every preview, the fixed-noise samples."""

    real_diversity: float  # diversity of a batch of real images: the yardstick for collapse
    smoothing: float = 0.9
    patience: int = 50  # steps a condition must hold before it is reported
    active: set[str] = field(default_factory=set)
    _ema: dict[str, float] = field(default_factory=dict)
    _since: dict[str, int] = field(default_factory=dict)

    def _smooth(self, key: str, value: float) -> float:
        prev = self._ema.get(key, value)
        self._ema[key] = self.smoothing * prev + (1 - self.smoothing) * value
        return self._ema[key]

    def _condition(self, code: str, holds: bool, step: int, message: HealthMessage) -> list[HealthMessage]:
        if not holds:
            self._since.pop(code, None)
            self.active.discard(code)
            return []
        start = self._since.setdefault(code, step)
        if step - start >= self.patience and code not in self.active:
            self.active.add(code)
            return [message]
        return []

    def observe_step(self, step: int, d_real: float, d_fake: float) -> list[HealthMessage]:
        """d_real = mean D(x), d_fake = mean D(G(z)), both probabilities in [0, 1]."""
        r = self._smooth("d_real", d_real)
        f = self._smooth("d_fake", d_fake)
        out = self._condition(
            "d_overpowering", r > 0.95 and f < 0.05, step,
            HealthMessage("d_overpowering", "warning",
                          f"The discriminator is winning too easily (D(x) ≈ {r:.2f}, D(G(z)) ≈ {f:.2f}): its loss is near 0 "
                          "and the generator gets almost no useful gradient. Try: turn on DiffAugment, one-sided label "
                          "smoothing or the skip-D threshold, lower D's learning rate, or use spectral norm."),
        )
        out += self._condition(
            "g_overpowering", f > 0.8 and r < 0.6, step,
            HealthMessage("g_overpowering", "warning",
                          f"The generator fools the discriminator most of the time (D(G(z)) ≈ {f:.2f}, D(x) ≈ {r:.2f}): D has "
                          "stopped telling real from fake, so G's images stop improving. Try: raise D's learning rate or "
                          "lower G's, or turn off the skip-D threshold."),
        )
        return out

    def observe_samples(self, step: int, samples: torch.Tensor) -> tuple[float, list[HealthMessage]]:
        """Diversity of the fixed-noise samples relative to real images' (1.0 = as varied as the data).

        Collapse is diversity *falling*: below half of the best seen so far and below 35% of the
        real images'. An untrained generator starts near 0, so nothing is said until diversity
        has first risen.
        """
        ratio = sample_diversity(samples) / max(self.real_diversity, 1e-8)
        best = self._ema["best_diversity"] = max(self._ema.get("best_diversity", 0.0), ratio)
        code = "collapse"
        if best > 0.3 and ratio < 0.5 * best and ratio < 0.35:
            if code not in self.active:
                self.active.add(code)
                return ratio, [HealthMessage(code, "warning",
                               f"Mode collapse: the samples are becoming alike (diversity {ratio:.0%} of the real "
                               f"images', down from {best:.0%}). The generator found a few outputs that fool D and "
                               "stopped exploring. Try: DiffAugment, a lower generator learning rate, spectral norm "
                               "in D, or resuming from an earlier checkpoint.")]
        elif ratio > 0.7 * best:
            self.active.discard(code)
        return ratio, []

    @staticmethod
    def non_finite(step: int, lr_g: float, lr_d: float) -> HealthMessage:
        return HealthMessage(
            "non_finite", "error",
            f"Step {step} produced NaN/inf losses. Restored the last good weights and halved both learning rates "
            f"(now G {lr_g:.2e}, D {lr_d:.2e}). If it happens again, lower the learning rates further, turn on "
            "spectral norm, or use the hinge loss.",
        )
