"""Optimising the image: initialisation, one L-BFGS or Adam step at a time, cancellation, precision."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

import torch

from ..device import forced_precision, native_bfloat16
from .losses import StyleObjective

CancelFlag = threading.Event | Callable[[], bool] | None

# Weight of the out-of-range penalty: large next to the loss terms (which are O(0.01..10)), so
# strays come back within a few steps, yet smooth enough for L-BFGS.
RANGE_PENALTY = 1000.0


class Cancelled(Exception):
    """Raised inside an optimiser evaluation to abandon the step in flight."""


def as_cancel_check(cancel: CancelFlag) -> Callable[[], bool]:
    """A ``threading.Event``, a callable returning bool, or None -> a callable returning bool."""
    if cancel is None:
        return lambda: False
    if isinstance(cancel, threading.Event):
        return cancel.is_set
    if callable(cancel):
        return lambda: bool(cancel())
    raise TypeError("cancel must be a threading.Event, a callable returning bool, or None")


def initial_image(kind: str, content: torch.Tensor, styles: Sequence[torch.Tensor], blend: Sequence[float],
                  generator: torch.Generator) -> torch.Tensor:
    """The starting image: the content, uniform noise, or noise with the styles' colour statistics.

    ``style-noise`` draws each pixel from a Gaussian with the blended mean and 3x3 colour covariance
    of the style images, so the optimisation starts in the style's palette.
    """
    n, _, h, w = content.shape
    if kind == "content":
        return content.clone()
    if kind == "noise":
        return torch.rand((n, 3, h, w), generator=generator).to(content)
    mean = torch.zeros(3, dtype=torch.float64)
    second = torch.zeros(3, 3, dtype=torch.float64)
    for style, weight in zip(styles, blend, strict=True):
        pixels = style.detach().double().cpu().reshape(3, -1)
        mean += weight * pixels.mean(1)
        second += weight * (pixels @ pixels.T) / pixels.shape[1]
    cov = second - torch.outer(mean, mean) + 1e-5 * torch.eye(3, dtype=torch.float64)
    noise = torch.randn((3, h * w), generator=generator, dtype=torch.float64)
    pixels = (torch.linalg.cholesky(cov) @ noise + mean[:, None]).reshape(1, 3, h, w).expand(n, -1, -1, -1)
    return pixels.clamp(0, 1).to(content)


def range_penalty(x: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the pixels outside [0, 1] to the nearest bound."""
    return (x - x.clamp(0, 1)).pow(2).mean()


class Stepper:
    """Takes one optimiser step per call and returns the loss terms of the image it started from.

    Pixels stay in [0, 1] without editing ``x`` between L-BFGS evaluations (clamping there, as the
    PyTorch tutorial does, corrupts L-BFGS' curvature pairs): the network sees ``clamp(x, 0, 1)`` and a
    quadratic penalty pulls strays back. L-BFGS without a line search does not decrease the loss at
    every step, so the best image evaluated so far is kept and :meth:`result` returns it if the last
    iterate is worse. ``cancelled`` is checked before every evaluation, inside the closure too.
    """

    def __init__(self, optimizer: str, objective: StyleObjective, x: torch.Tensor, cancelled: Callable[[], bool],
                 learning_rate: float | None = None):
        self.objective = objective
        self.x = x
        self.cancelled = cancelled
        self.gray = x.shape[1] == 1  # luminance-only transfer: one channel, shown to the network as gray RGB
        self.terms = (math.nan,) * 4
        self.best_loss = math.inf
        self.best_image: torch.Tensor | None = None
        if optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam([x], lr=learning_rate or 0.02)
        else:
            # max_iter=1: one evaluation and one update per call; the history lives on in the state
            self.optimizer = torch.optim.LBFGS([x], lr=learning_rate or 1.0, max_iter=1, history_size=100,
                                               tolerance_grad=0.0, tolerance_change=0.0)

    def _as_rgb(self, image: torch.Tensor) -> torch.Tensor:
        return image.expand(-1, 3, -1, -1) if self.gray else image

    def _closure(self) -> torch.Tensor:
        if self.cancelled():
            raise Cancelled
        self.optimizer.zero_grad(set_to_none=True)
        image = self.x.clamp(0, 1)
        terms = self.objective(self._as_rgb(image))
        loss = terms.total + RANGE_PENALTY * range_penalty(self.x)
        loss.backward()
        self.terms = terms.floats()
        if self.terms[3] < self.best_loss:
            self.best_loss, self.best_image = self.terms[3], image.detach().clone()
        return loss

    def __call__(self) -> tuple[float, float, float, float]:
        """(content, style, tv, total) of the image before this step."""
        if isinstance(self.optimizer, torch.optim.LBFGS):
            self.optimizer.step(self._closure)
        else:
            self._closure()
            self.optimizer.step()
            with torch.no_grad():
                self.x.clamp_(0, 1)  # Adam keeps no curvature pairs, so clamping costs it nothing
        return self.terms

    @torch.no_grad()
    def result(self) -> torch.Tensor:
        """The better of the current image and the best one evaluated so far, in [0, 1]."""
        current = self.x.detach().clamp(0, 1)
        if self.best_image is None:
            return current
        if self.objective(self._as_rgb(current)).total.item() <= self.best_loss:
            return current
        return self.best_image


def choose_precision(device: torch.device, requested: str) -> torch.dtype | None:
    """The autocast dtype for the network's steps (None: float32). Targets, Gram matrices, losses and the
    final measurement stay float32. "auto": ``$GANDEMO_PRECISION`` if set, else bfloat16 where it is native.
    float16 (the fast type of pre-Ampere GPUs) runs without a loss scaler: the losses are O(1) and
    measured in float32, and scripts/gpu_check.py compares its result with float32's."""
    if requested == "auto":
        forced = forced_precision()
        if forced is not None:
            return forced.dtype
    if requested == "bfloat16" or (requested == "auto" and native_bfloat16(device)):
        return torch.bfloat16
    return torch.float16 if requested == "float16" else None
