"""What a style transfer run is told (:class:`StyleSettings`) and what it reports (:class:`StyleEvent`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal

from PIL import Image

from ..errors import InvalidInputError
from .layers import layer_index

MIN_SIDE = 16  # the smallest image side: relu5_1 sits behind four 2x2 poolings
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
MAX_STEPS = 10_000
MAX_STYLES = 8
ABSOLUTE_MAX_SIDE = 4096


@dataclass
class StyleSettings:
    """Everything a style transfer run can be told. Defaults suit a 512 px image.

    Weights multiply the normalised terms of :mod:`gandemo.style.losses` (relative errors and a mean
    total variation), so a value means the same at any output size, style scale or number of styles.
    """

    size: int = 512                      # long side of the output, px (aspect from the content image)
    steps: int = 300                     # optimiser steps per scale
    content_weight: float = 1.0
    style_weight: float = 50.0
    tv_weight: float = 5.0
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    learning_rate: float | None = None   # None: 1.0 for L-BFGS, 0.02 for Adam (pixel units)
    init: Literal["content", "noise", "style-noise"] = "content"
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    style_layer_weights: tuple[float, ...] | None = None   # None: equal (normalised to sum to 1)
    style_blend: tuple[float, ...] | None = None           # one weight per style image; None: equal
    style_scale: float = 1.0             # style image long side = style_scale x the working long side
    preserve_colors: bool = False        # luminance-only transfer; chroma (YIQ I, Q) from the content
    multiscale: bool = False             # coarse-to-fine: multiscale_start, x2, ... up to size
    multiscale_start: int = 256
    pooling: Literal["max", "avg"] = "max"
    precision: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bfloat16 where native ($GANDEMO_PRECISION)
    preview_every: int = 10              # a preview image every N steps (0: only at the end of each scale)
    seed: int = 0                        # for the noise initialisations
    vgg_weights: str | None = None       # a local file; None: $GANDEMO_VGG_WEIGHTS, else the Hub
    max_size: int | None = None          # cap on the long side; None: what the device's memory allows

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> StyleSettings:
        """Settings from a mapping (a UI form, JSON), ignoring unknown keys; lists become tuples."""
        known = {f.name for f in fields(cls)}
        clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
        return replace(cls(), **clean)

    def checked(self, n_styles: int | None = None) -> StyleSettings:
        """A validated copy with whole numbers as ints and sequences as tuples (UI sliders send floats)."""
        self.validate(n_styles)
        ints = {name: int(getattr(self, name)) for name in ("size", "steps", "multiscale_start", "preview_every", "seed")}
        if self.max_size is not None:
            ints["max_size"] = int(self.max_size)
        tuples = {name: tuple(getattr(self, name)) for name in
                  ("content_layers", "style_layers", "style_layer_weights", "style_blend") if getattr(self, name) is not None}
        floats = {name: float(getattr(self, name)) for name in ("content_weight", "style_weight", "tv_weight", "style_scale")}
        return replace(self, **ints, **tuples, **floats)

    def validate(self, n_styles: int | None = None) -> None:
        """Raise InvalidInputError with a sentence for the first out-of-range setting (and for a number of
        style images, ``n_styles``, that is not 1 to MAX_STYLES or doesn't match the blend weights)."""
        if n_styles is not None and n_styles < 1:
            raise InvalidInputError("Give at least one style image.")
        if n_styles is not None and n_styles > MAX_STYLES:
            raise InvalidInputError(f"At most {MAX_STYLES} style images, got {n_styles}.")
        steps = _whole(self.steps, "number of steps")
        if not 1 <= steps <= MAX_STEPS:
            raise InvalidInputError(f"The number of steps must be between 1 and {MAX_STEPS}, got {self.steps}.")
        size = _whole(self.size, "output size")
        if not MIN_SIDE * 2 <= size <= ABSOLUTE_MAX_SIDE:
            raise InvalidInputError(f"The output size must be between {MIN_SIDE * 2} and {ABSOLUTE_MAX_SIDE} px, got {self.size}.")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise InvalidInputError(f"The {name.replace('_', ' ')} must be a finite number >= 0, got {value}.")
        if self.content_weight == 0 and self.style_weight == 0:
            raise InvalidInputError("The content and style weights are both 0: there is nothing to optimise.")
        choices = {"optimizer": ("lbfgs", "adam"), "init": ("content", "noise", "style-noise"),
                   "pooling": ("max", "avg"), "precision": ("auto", "float32", "bfloat16", "float16")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InvalidInputError(
                    f"The {name} must be one of {', '.join(allowed)}; got '{getattr(self, name)}'.")
        if self.learning_rate is not None and not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise InvalidInputError(f"The learning rate must be a positive number, got {self.learning_rate}.")
        if _whole(self.seed, "seed") < 0:
            raise InvalidInputError(f"The seed must be >= 0, got {self.seed}.")
        if not isinstance(self.style_scale, int | float) or not 0.05 <= self.style_scale <= 8:
            raise InvalidInputError(f"The style scale must be between 0.05 and 8, got {self.style_scale}.")
        if self.multiscale and _whole(self.multiscale_start, "first multi-scale size") < MIN_SIDE * 2:
            raise InvalidInputError(f"The first multi-scale size must be at least {MIN_SIDE * 2} px.")
        if _whole(self.preview_every, "preview interval") < 0:
            raise InvalidInputError("The preview interval must be 0 (off) or a positive number of steps.")
        if self.max_size is not None and _whole(self.max_size, "maximum size") < MIN_SIDE * 2:
            raise InvalidInputError(f"The maximum size must be at least {MIN_SIDE * 2} px.")
        if not self.content_layers and self.content_weight > 0:
            raise InvalidInputError("Give at least one content layer (or set the content weight to 0).")
        if not self.style_layers:
            raise InvalidInputError("Give at least one style layer.")
        for name in (*self.content_layers, *self.style_layers):
            layer_index(name)
        if self.style_layer_weights is not None:
            weights = self.style_layer_weights
            if len(weights) != len(self.style_layers):
                raise InvalidInputError(f"{len(weights)} style layer weights for {len(self.style_layers)} style layers.")
            if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
                raise InvalidInputError("Style layer weights must be >= 0 and not all 0.")
        if n_styles is not None and self.style_blend is not None:
            if len(self.style_blend) != n_styles:
                raise InvalidInputError(
                    f"{len(self.style_blend)} blend weights for {n_styles} style image(s): give one per style image.")
            if any(w < 0 or not math.isfinite(w) for w in self.style_blend):
                raise InvalidInputError(f"Style blend weights must be >= 0, got {list(self.style_blend)}.")
            if sum(self.style_blend) <= 0:
                raise InvalidInputError("The style blend weights are all 0: give at least one style a weight.")


def _whole(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value != int(value):
        raise InvalidInputError(f"The {what} must be a whole number, got {value!r}.")
    return int(value)


@dataclass
class StyleEvent:
    """One report from a run. ``done`` is True on the last event, which carries ``image``.

    Loss values are the unweighted terms (see :mod:`gandemo.style.losses`) of the image the step started
    from; on the last event they are measured (in float32) on the result itself. ``total_loss`` is the
    weighted sum.
    """

    step: int                       # steps taken so far, all scales together (0 before the first)
    total_steps: int
    scale: int = 0                  # index of the current scale (0-based)
    num_scales: int = 1
    size: tuple[int, int] = (0, 0)  # (width, height) being optimised now
    content_loss: float = math.nan
    style_loss: float = math.nan
    tv_loss: float = math.nan
    total_loss: float = math.nan
    preview: Image.Image | None = None   # the current image: every preview_every steps, at each scale's end
    image: Image.Image | None = None     # the result (last event only; as far as it got if cancelled)
    done: bool = False
    cancelled: bool = False
    elapsed: float = 0.0            # seconds since the run started
    message: str = ""               # a one-line status for people

    @property
    def progress(self) -> float:
        """Fraction of the steps done, 0..1."""
        return self.step / self.total_steps if self.total_steps else 0.0


def check_image_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path (``~`` expanded) if it is a file; else InvalidInputError naming ``what``
    ("content image", "style image 2"). No torch: the command line checks its inputs with this at once."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidInputError(f"The {what} {path} does not exist.")
    return path


def style_image_name(index: int, count: int) -> str:
    """How messages name style image ``index`` (from 0) of ``count``: "style image", or "style image 2"."""
    return "style image" if count == 1 else f"style image {index + 1}"
