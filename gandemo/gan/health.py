"""Training health: the classic GAN failures, measured and said in words.

Each check watches smoothed statistics and, when a failure shows, returns a message that says
what is happening and what to try. Messages are emitted once when a condition starts (and again
only after it has cleared), so a stuck run doesn't repeat itself every step.

"Oscillating without progress" (the lesson's case for suddenly lowering the learning rate) is measured
over the last ``window`` steps (default 200), in two halves, on D(G(z)) and G's loss. All four must hold:

- it swings: D(G(z))'s standard deviation over the window is at least ``OSCILLATION_SWING`` (0.15);
- back and forth: D(G(z)) crosses its window mean on at least ``OSCILLATION_CROSSINGS`` (10%) of the steps
  (a drift up or down crosses it once);
- it doesn't settle: the second half's standard deviation is at least 90% of the first half's;
- no progress: G's mean loss in the second half is not 2% below the first half's.

A trainer with ``auto_lr_drop`` lowers both learning rates x0.1 when this is reported, and restarts the
window (``restart_oscillation``) after any learning-rate change, so the next drop needs a fresh window.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

import torch


@dataclass
class HealthMessage:
    code: str  # "collapse" | "d_overpowering" | "g_overpowering" | "oscillating" | "non_finite" | "lr_change"
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


OSCILLATION_SWING = 0.15  # D(G(z))'s standard deviation over the window, at least
OSCILLATION_CROSSINGS = 0.10  # share of steps on which D(G(z)) crosses its window mean, at least
OSCILLATION_SETTLING = 0.9  # the second half's swing is at least this share of the first half's
OSCILLATION_PROGRESS = 0.98  # G's mean loss in the second half is at least this share of the first half's


@dataclass
class HealthMonitor:
    """Feed it every step's statistics and, every preview, the fixed-noise samples."""

    real_diversity: float  # diversity of a batch of real images: the yardstick for collapse
    smoothing: float = 0.9
    patience: int = 50  # steps a condition must hold before it is reported
    active: set[str] = field(default_factory=set)
    _ema: dict[str, float] = field(default_factory=dict)
    _since: dict[str, int] = field(default_factory=dict)
    window: int = 200  # steps the oscillation check looks at
    _recent: deque[tuple[float, float]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._recent = deque(self._recent, maxlen=self.window)

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

    def observe_step(self, step: int, d_real: float, d_fake: float, loss_g: float | None = None) -> list[HealthMessage]:
        """d_real = mean D(x), d_fake = mean D(G(z)), both probabilities in [0, 1]; loss_g = G's loss
        (with it, the oscillation check runs too)."""
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
        if loss_g is not None:
            out += self._observe_oscillation(d_fake, loss_g)
        return out

    def oscillation(self) -> dict[str, float] | None:
        """The measures of "oscillating without progress" (see the module's docstring) over the last
        ``window`` steps, or None until a full window has been seen."""
        if len(self._recent) < self.window:
            return None
        fakes = [f for f, _ in self._recent]
        losses = [g for _, g in self._recent]
        half = len(fakes) // 2
        mean = statistics.fmean(fakes)
        crossings = sum(1 for a, b in zip(fakes, fakes[1:]) if (a - mean) * (b - mean) < 0)
        first, second = statistics.pstdev(fakes[:half]), statistics.pstdev(fakes[half:])
        return {"swing": statistics.pstdev(fakes), "mean": mean, "crossings": crossings / (len(fakes) - 1),
                "settling": second / max(first, 1e-12),
                "progress": statistics.fmean(losses[half:]) / max(abs(statistics.fmean(losses[:half])), 1e-12)}

    def _observe_oscillation(self, d_fake: float, loss_g: float) -> list[HealthMessage]:
        self._recent.append((d_fake, loss_g))
        m = self.oscillation()
        code = "oscillating"
        holds = m is not None and (m["swing"] >= OSCILLATION_SWING and m["crossings"] >= OSCILLATION_CROSSINGS
                                   and m["settling"] >= OSCILLATION_SETTLING and m["progress"] >= OSCILLATION_PROGRESS)
        if not holds:
            self.active.discard(code)
            return []
        if code in self.active:
            return []
        self.active.add(code)
        return [HealthMessage(
            code, "warning",
            f"The losses are oscillating without progress: over the last {self.window} steps D(G(z)) swung by "
            f"±{m['swing']:.2f} around {m['mean']:.2f}, back and forth on {m['crossings']:.0%} of the steps, without "
            "settling, and the generator's loss did not fall. The lesson's remedy: suddenly lower the learning rate "
            "(the button under the plots, --lr-drop, or automatic drops).")]

    def restart_oscillation(self) -> None:
        """Forget the window: after a learning-rate change the oscillation is judged afresh."""
        self._recent.clear()
        self.active.discard("oscillating")

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
                               "stopped exploring. Try: DiffAugment, minibatch diversity in D, packing (D judges 2-4 "
                               "images at once), a lower generator learning rate, spectral norm in D, or resuming "
                               "from an earlier checkpoint.")]
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


def learning_rates_changed(reason: str, next_step: int, old: tuple[float, float], new: tuple[float, float],
                           factor: float | None = None) -> HealthMessage:
    """The note for a change of the learning rates (marked on the plots and kept in the run's state)."""
    rates = f"G {old[0]:.2e} → {new[0]:.2e}, D {old[1]:.2e} → {new[1]:.2e}"
    if reason == "schedule":
        text = f"Learning rates lowered by the schedule (×{factor:g}): {rates}, from step {next_step} on."
    elif reason == "auto":
        text = (f"Learning rates lowered ×{factor:g} automatically, because the losses oscillate without progress: "
                f"{rates}, from step {next_step} on.")
    else:
        text = f"Learning rates changed by hand: {rates}, from step {next_step} on."
    return HealthMessage("lr_change", "info", text)
