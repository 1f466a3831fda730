"""Run a lab config to the end in one call: the future ``/lab_run`` endpoint, the CLI, scripts."""

from __future__ import annotations

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


def run_lab(
    config: LabConfig, steps: int, frames: int = 0, size: int = 480,
    on_step: Callable[[Lab], None] | None = None, **render_options: Any,
) -> LabResult:
    """Train a fresh :class:`Lab` for ``steps`` steps and draw it (``render_options`` go to
    :func:`render_frame`: show, plots, labels). ``on_step(lab)`` is called after every step,
    e.g. to apply a live change at a chosen step or to report progress."""
    check_run_length(steps, frames)
    if isinstance(size, bool) or not isinstance(size, int) or not 64 <= size <= 2048:
        raise InvalidInputError(f"size must be a whole number of pixels between 64 and 2048, got {size!r}.")
    lab = Lab(config)
    # Frame k is drawn after round(k * steps / frames) steps, so the last frame is the end state.
    marks = {round(k * steps / frames) for k in range(1, frames + 1)} if frames else set()
    images: list[Image.Image] = []
    if frames and 0 in marks:  # fewer steps than frames: the start is worth a frame too
        images.append(render_frame(lab, size, **render_options))
    for _ in range(steps):
        lab.train_step()
        if on_step is not None:
            on_step(lab)
        if lab.step in marks:
            images.append(render_frame(lab, size, **render_options))
    image = images[-1] if images and lab.step in marks else render_frame(lab, size, **render_options)
    return LabResult(image=image, metrics={**lab.metrics(), "steps": lab.step}, frames=images, lab=lab)
