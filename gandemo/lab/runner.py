"""Run a lab config to the end in one call: the future ``/lab_run`` endpoint, the CLI, scripts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ..errors import InvalidInputError
from .config import LabConfig, check_run_length
from .lab import Lab
from .render import render_frame


@dataclass
class LabResult:
    """``image``: the final frame; ``metrics``: :meth:`Lab.metrics` at the end plus ``steps``;
    ``frames``: evenly spaced frames (the first after the first chunk of steps, the last = the
    end) when frames > 0; ``lab``: the trained lab, for more drawing or steps."""

    image: Image.Image
    metrics: dict[str, Any]
    frames: list[Image.Image] = field(default_factory=list)
    lab: Lab | None = None


class LabRunTooLongError(InvalidInputError):
    """A run that would take longer than its time budget (a shared server's)."""


PROBE_STEPS = 5  # steps timed before a run's length is judged


def run_lab(
    config: LabConfig, steps: int, frames: int = 0, size: int = 480,
    on_step: Callable[[Lab], None] | None = None, time_budget_s: float = 0.0, **render_options: Any,
) -> LabResult:
    """Train a fresh :class:`Lab` for ``steps`` steps and draw it (``render_options`` go to
    :func:`render_frame`: show, plots, labels). ``on_step(lab)`` is called after every step,
    e.g. to apply a live change at a chosen step or to report progress.

    ``time_budget_s`` > 0: a run whose steps would take longer (timed over the first few, then checked as it
    goes) ends with LabRunTooLongError, saying how many steps of these settings would fit."""
    check_run_length(steps, frames)
    if isinstance(size, bool) or not isinstance(size, int) or not 64 <= size <= 2048:
        raise InvalidInputError(f"size must be a whole number of pixels between 64 and 2048, got {size!r}.")
    lab = Lab(config)
    # Frame k is drawn after round(k * steps / frames) steps, so the last frame is the end state.
    marks = {round(k * steps / frames) for k in range(1, frames + 1)} if frames else set()
    images: list[Image.Image] = []
    if frames and 0 in marks:  # fewer steps than frames: the start is worth a frame too
        images.append(render_frame(lab, size, **render_options))
    start = time.perf_counter()
    for _ in range(steps):
        lab.train_step()
        if time_budget_s > 0 and lab.step >= PROBE_STEPS:
            elapsed = time.perf_counter() - start
            if elapsed > time_budget_s or (lab.step == PROBE_STEPS and elapsed / lab.step * steps > time_budget_s):
                per_step = elapsed / lab.step
                raise LabRunTooLongError(
                    f"These settings take about {per_step:.2f} s per step here, so at most "
                    f"{max(1, int(time_budget_s / per_step))} steps fit in the {time_budget_s:g} s a run may take on "
                    f"this server (asked for {steps}). Ask for fewer steps, or a smaller network or batch."
                )
        if on_step is not None:
            on_step(lab)
        if lab.step in marks:
            images.append(render_frame(lab, size, **render_options))
    image = images[-1] if images and lab.step in marks else render_frame(lab, size, **render_options)
    return LabResult(image=image, metrics={**lab.metrics(), "steps": lab.step}, frames=images, lab=lab)
