"""The lab's settings and what each accepts (``LabConfig``, ``FIELD_RULES``), without torch: the command line
builds its ``lab`` options and refuses a bad one at once; ``gandemo.lab.lab`` (the Lab) re-exports them."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import InvalidInputError

DATASETS: tuple[str, ...] = ("ring", "grid", "moons", "spiral", "line", "clusters", "custom")  # gandemo.lab.data's
MIN_POINTS, MAX_POINTS = 8, 5000
ACTIVATION_NAMES: tuple[str, ...] = ("relu", "leaky_relu", "tanh", "elu")  # gandemo.lab.nets.ACTIVATIONS' keys
LOSSES: tuple[str, ...] = ("minimax", "nonsaturating", "least_squares", "hinge")
MAX_STEPS = 20000  # one run_lab call
MAX_FRAMES = 120


@dataclass(frozen=True)
class Rule:
    """What a config field accepts; the validator, the CLI and the UI all read this table."""

    kind: type
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    live: bool = False  # may change while the lab runs (else: reset the lab)
    help: str = ""


SEED_MAX = 2**31 - 1
FIELD_RULES: dict[str, Rule] = {
    "dataset": Rule(str, choices=DATASETS, help="toy data set"),
    "n_points": Rule(int, MIN_POINTS, MAX_POINTS, help="points in the data set"),
    "data_seed": Rule(int, 0, SEED_MAX, help="seed of the data set"),
    "seed": Rule(int, 0, SEED_MAX, help="seed of the networks and of training"),
    "noise_dim": Rule(int, 1, 2, help="dimensions of G's noise z"),
    "noise": Rule(str, choices=("gaussian", "uniform"), help="distribution of z"),
    "g_layers": Rule(int, 0, 4, help="hidden layers of G"),
    "g_units": Rule(int, 4, 128, help="units per hidden layer of G"),
    "d_layers": Rule(int, 0, 4, help="hidden layers of D"),
    "d_units": Rule(int, 4, 128, help="units per hidden layer of D"),
    "activation": Rule(str, choices=ACTIVATION_NAMES, help="hidden activation"),
    "loss": Rule(str, choices=LOSSES, live=True, help="GAN loss"),
    "d_steps": Rule(int, 0, 10, live=True, help="D updates per step"),
    "g_steps": Rule(int, 0, 10, live=True, help="G updates per step"),
    "opt_g": Rule(str, choices=("adam", "sgd"), help="optimiser of G"),
    "opt_d": Rule(str, choices=("adam", "sgd"), help="optimiser of D"),
    "lr_g": Rule(float, 1e-6, 1.0, live=True, help="learning rate of G"),
    "lr_d": Rule(float, 1e-6, 1.0, live=True, help="learning rate of D"),
    "batch_size": Rule(int, 8, 1024, help="points per batch"),
    "label_smoothing": Rule(float, 0.5, 1.0, live=True, help="D's target for real points (1 = off)"),
    "gp_weight": Rule(float, 0.0, 100.0, live=True, help="weight of the R1 gradient penalty on D"),
    "d_skip_threshold": Rule(float, 0.0, 10.0, live=True, help="skip D's update while its loss is below this"),
    "minibatch_discrimination": Rule(bool, help="D also sees the batch's spread"),
}


@dataclass
class LabConfig:
    """Settings of one lab run. ``gp_weight`` weighs an R1 penalty (Mescheder et al. 2018) on
    D's gradient at real points. ``custom_points`` is a list of [x, y] for dataset="custom"."""

    dataset: str = "ring"
    n_points: int = 512
    data_seed: int = 0
    seed: int = 0
    noise_dim: int = 2
    noise: str = "gaussian"
    g_layers: int = 2
    g_units: int = 64
    d_layers: int = 2
    d_units: int = 64
    activation: str = "relu"
    loss: str = "nonsaturating"
    d_steps: int = 1
    g_steps: int = 1
    opt_g: str = "adam"
    opt_d: str = "adam"
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    batch_size: int = 128
    label_smoothing: float = 1.0
    gp_weight: float = 0.0
    d_skip_threshold: float = 0.0
    minibatch_discrimination: bool = False
    custom_points: list[list[float]] | None = field(default=None)

    def validate(self) -> LabConfig:
        """Raise :class:`InvalidInputError` naming the first bad field and what it accepts."""
        for name in FIELD_RULES:
            check_value(name, getattr(self, name))
        if self.dataset == "custom":
            pts = self.custom_points
            if not isinstance(pts, list | tuple) or not all(
                isinstance(p, list | tuple) and len(p) == 2 and all(_is_number(v) for v in p) for p in pts
            ):
                raise InvalidInputError("custom_points must be a list of [x, y] pairs of finite numbers.")
            if not MIN_POINTS <= len(pts) <= MAX_POINTS:
                raise InvalidInputError(
                    f"custom_points must hold between {MIN_POINTS} and {MAX_POINTS} points, got {len(pts)}."
                )
        return self

    def replace(self, **changes: Any) -> LabConfig:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise InvalidInputError(f"Unknown lab setting(s): {', '.join(sorted(unknown))}.")
        new = copy.deepcopy(self)
        for name, value in changes.items():
            setattr(new, name, value)
        return new


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def check_value(name: str, value: Any) -> None:
    """Validate one field against :data:`FIELD_RULES` (no rounding, no bool-for-int)."""
    rule = FIELD_RULES[name]
    if rule.kind is bool:
        if not isinstance(value, bool):
            raise InvalidInputError(f"{name} must be true or false, got {value!r}.")
        return
    if rule.choices is not None:
        if value not in rule.choices:
            raise InvalidInputError(f"{name} must be one of {', '.join(rule.choices)}; got {value!r}.")
        return
    span = f"between {rule.lo:g} and {rule.hi:g}"
    if rule.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(f"{name} must be a whole number {span}, got {value!r}.")
    elif not _is_number(value):
        raise InvalidInputError(f"{name} must be a finite number {span}, got {value!r}.")
    if not rule.lo <= value <= rule.hi:
        raise InvalidInputError(f"{name} must be {span}, got {value!r}.")


def check_run_length(steps: int, frames: int = 0) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
        raise InvalidInputError(f"steps must be a whole number between 0 and {MAX_STEPS}, got {steps!r}.")
    if isinstance(frames, bool) or not isinstance(frames, int) or not 0 <= frames <= MAX_FRAMES:
        raise InvalidInputError(f"frames must be a whole number between 0 and {MAX_FRAMES}, got {frames!r}.")
