"""Every setting of a training run, and what each one accepts: ``TrainConfig`` and its ``Rule``s.

Nothing here imports torch, so the command line can build its ``train`` options, answer ``--help`` and refuse
a bad setting at once. ``gandemo.gan.train`` (the Trainer) re-exports ``TrainConfig``, ``Rule``, ``settings_table``
and ``parse_lr_drop``; the supported sizes, channels, architectures and DiffAugment policies live here too.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import InvalidInputError

__all__ = ["ARCHITECTURES", "ARCH_NAMES", "POLICIES", "SUPPORTED_CHANNELS", "SUPPORTED_SIZES", "Rule", "TrainConfig",
           "check_epochs", "parse_lr_drop", "parse_policy", "settings_table"]

SUPPORTED_SIZES = (32, 64, 128)
SUPPORTED_CHANNELS = (1, 3, 4)
ARCHITECTURES = ("dcgan", "msg", "progressive")
ARCH_NAMES = {"dcgan": "DCGAN", "msg": "MSG-GAN", "progressive": "Progressive GAN"}
POLICIES = ("color", "translation", "cutout")  # DiffAugment's (gandemo.gan.augment)


def parse_policy(policy: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """"color,cutout" -> ("color", "cutout"); an unknown name is a ValueError naming it."""
    parts = [p.strip() for p in (policy.split(",") if isinstance(policy, str) else policy) if p.strip()]
    unknown = [p for p in parts if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {', '.join(unknown)}; choose from {', '.join(POLICIES)}")
    return tuple(parts)


def check_epochs(epochs: float) -> float:
    """A training length in passes over the images (``--epochs``): a positive, finite number."""
    if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or not math.isfinite(epochs) or epochs <= 0:
        raise InvalidInputError(f"Epochs must be a positive number (got {epochs!r}).")
    return epochs


def _policy_problem(value: object) -> str | None:
    try:
        parse_policy(value)  # type: ignore[arg-type]
    except (ValueError, AttributeError, TypeError) as e:
        return str(e)
    return None


def parse_lr_drop(text: str) -> tuple[int, float]:
    """"1000:0.1" -> (1000, 0.1): after step 1000, both learning rates x0.1."""
    step, sep, factor = str(text).partition(":")
    try:
        if not sep:
            raise ValueError
        return int(step), float(factor)
    except ValueError:
        raise ValueError(f"a learning-rate drop is STEP:FACTOR, e.g. 1000:0.1 (got {text!r})") from None


def _lr_drops_problem(drops: object) -> str | None:
    for drop in drops:  # type: ignore[attr-defined]
        ok = isinstance(drop, tuple) and len(drop) == 2
        step, factor = drop if ok else (None, None)
        ok = ok and isinstance(step, int) and not isinstance(step, bool) and step >= 1
        ok = ok and isinstance(factor, (int, float)) and not isinstance(factor, bool) and 0 < factor < 1
        if not ok:
            return f"a learning-rate drop is a step from 1 and a factor between 0 and 1, e.g. 1000:0.1 (got {drop!r})"
    return None


@dataclass(frozen=True)
class Rule:
    """What one training setting means and which values it takes.

    TrainConfig's fields carry one each (``field(metadata={"rule": ...})``); ``validate()``, the CLI's
    ``train`` options (gandemo.cli) and the Train tab's widgets (gandemo.ui.train_tab) are built from
    them, so a default, a range or a help text is written once. The Train tab's labels are catalog texts
    keyed by field name (``train.field.<name>``), its deliberate differences are in ``UI_DEFAULTS`` there."""

    help: str  # one line for ``--help``
    choices: tuple[Any, ...] = ()
    lo: float | None = None  # allowed range; None: unbounded
    hi: float | None = None
    lo_open: bool = False  # lo itself is not allowed
    hi_open: bool = False
    words: str = ""  # the setting's name in error messages (default: the field's name)
    problem: str = ""  # the error sentence where the standard one doesn't fit ({value}, {lo}, {hi})
    check: Callable[[Any], str | None] | None = None  # a further check: the problem, or None
    flags: tuple[str, ...] = ()  # further CLI spellings (kept from earlier versions), e.g. "--size"
    slider: tuple[float, float, float] | None = None  # (min, max, step): the Train tab shows a slider
    ui: str = ""  # why the Train tab has no widget for it ("" = it has one)
    parse: Callable[[str], Any] | None = None  # a list-valued setting: one CLI text -> one item
    metavar: str = ""  # how --help shows a list item, e.g. STEP:FACTOR

    def problem_with(self, name: str, kind: type, value: Any) -> str | None:
        """The sentence that says what is wrong with ``value``, or None when it is allowed."""
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, typing.get_origin(kind) or kind)
        if ok and self.choices:
            ok = value in self.choices
        if ok and self.lo is not None:
            ok = value > self.lo if self.lo_open else value >= self.lo
        if ok and self.hi is not None:
            ok = value < self.hi if self.hi_open else value <= self.hi
        if ok:
            return self.check(value) if self.check else None
        words = self.words or name
        if self.problem:
            return self.problem.format(words=words, value=repr(value), lo=_number(self.lo), hi=_number(self.hi))
        if self.choices:
            return f"{words} must be {_one_of([repr(c) for c in self.choices])} (got {value!r})"
        if kind is bool:
            return f"{words} must be true or false (got {value!r})"
        if kind is int and self.lo is not None and self.hi is not None:
            return f"{words} must be between {_number(self.lo)} and {_number(self.hi)} (got {value!r})"
        if self.lo is not None and self.hi is not None:
            interval = f"{'(' if self.lo_open else '['}{_number(self.lo)}, {_number(self.hi)}{')' if self.hi_open else ']'}"
            return f"{words} must be in {interval} (got {value!r})"
        if self.lo is not None:
            return f"{words} must be at least {_number(self.lo)} (got {value!r})"
        return f"{words} is not a valid value (got {value!r})"


def _number(x: float | None) -> str:
    """1,000,000 and 10,080 with separators, 1024 and 0.1 as written."""
    if x is None:
        return ""
    return f"{x:,}" if abs(x) >= 10_000 else f"{x:g}"


def _one_of(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def setting(default: Any, help: str, **rule: Any) -> Any:  # noqa: A002 - the CLI's word for it
    """A TrainConfig field: its default and its Rule."""
    return field(default=default, metadata={"rule": Rule(help=help, **rule)})


_WIDTHS = "widths must be between {lo} and {hi}"
_NOT_NEGATIVE = "R1 gamma and the skip-D threshold can't be negative"
_WHOLE_STEPS = "{words} must be a whole number of steps from 0 (off) to {hi} (got {value})"


@dataclass
class TrainConfig:
    """Every setting of a training run. Each field's Rule (help, allowed values) is the one source the
    CLI, the Train tab and ``validate()`` are built from: a new setting is one line here."""

    image_size: int = setting(64, "resolution in px", choices=SUPPORTED_SIZES, words="resolution", flags=("--size",))
    arch: str = setting("dcgan", "architecture: dcgan; msg (MSG-GAN: G draws every scale from 4x4 up, D judges each "
                        "at the matching depth); progressive (progressive growing: from 4x4 up, one resolution at a "
                        "time, see --grow-steps). msg and progressive are for 64 and 128 px, also allowed at 32",
                        choices=ARCHITECTURES, words="architecture")
    channels: int = setting(3, "image channels: 1 grey, 3 RGB, 4 RGBA ('auto': as the images have them)",
                            choices=SUPPORTED_CHANNELS, ui="taken from the uploaded images")
    latent_dim: int = setting(100, "length of the noise vector z", lo=1, hi=4096,
                              ui="a fixed 100 like the lesson's DCGAN; the CLI can change it")
    width_g: int = setting(64, "network width of G", lo=1, hi=512, problem=_WIDTHS, slider=(16, 128, 8))
    width_d: int = setting(64, "network width of D", lo=1, hi=512, problem=_WIDTHS,
                           ui="the Train tab's one width sets both networks")
    batch_size: int = setting(32, "images per step", lo=2, hi=1024, words="batch size", slider=(4, 256, 4))
    steps: int = setting(2000, "training length in steps", lo=1, hi=1_000_000)
    lr_g: float = setting(2e-4, "learning rate of G (Adam)", lo=0, hi=0.1, lo_open=True)
    lr_d: float = setting(2e-4, "learning rate of D (Adam)", lo=0, hi=0.1, lo_open=True)
    beta1: float = setting(0.5, "Adam beta1 of both optimisers", lo=0, hi=1, hi_open=True)
    beta2: float = setting(0.999, "Adam beta2 of both optimisers", lo=0, hi=1, hi_open=True)
    seed: int = setting(0, "random seed (same seed, settings and images: the same run)", lo=0, hi=2**32 - 1)
    loss: str = setting("bce", "bce: non-saturating BCE with logits; hinge: hinge loss", choices=("bce", "hinge"))
    diffaugment: str = setting("color,translation,cutout", "DiffAugment policies, a comma list; '' turns it off",
                               check=_policy_problem)
    mirror: bool = setting(False, "random horizontal flips of real images (only for subjects without a left and right)")
    label_smoothing: float = setting(0.9, "target for real images in D's BCE loss (1 = off)", lo=0.5, hi=1,
                                     words="label smoothing (real target)", slider=(0.7, 1.0, 0.05))
    spectral_norm: bool = setting(True, "spectral norm in D")
    minibatch_std: bool = setting(False, "minibatch diversity in D (ProGAN's minibatch standard deviation): D "
                                  "also sees how much the images of a group of 4 differ, so a generator that draws "
                                  "few kinds is caught (against mode collapse)")
    pack: int = setting(1, "PacGAN's packing: D judges this many images at once (stacked along the channels) and "
                        "gives one verdict for them all, so a generator that draws some kinds too often or too alike "
                        "is caught (1 = off; the batch size must divide by it)", choices=(1, 2, 3, 4),
                        words="pack (images D judges at once)")
    d_skip_threshold: float = setting(0.05, "skip D's update while its (unsmoothed) loss is below this (0 = off)",
                                      lo=0, problem=_NOT_NEGATIVE, slider=(0, 0.5, 0.01))
    ema_decay: float = setting(0.999, "EMA decay of G's weights for previews and export (0 = off)", lo=0, hi=1,
                               hi_open=True, words="EMA decay", flags=("--ema",), slider=(0, 0.9999, 0.0001))
    r1_gamma: float = setting(0.0, "R1 penalty gamma on real images (0 = off)", lo=0, problem=_NOT_NEGATIVE,
                              flags=("--r1",), slider=(0, 10, 0.1))
    preview_every: int = setting(100, "a sample grid every N steps (0: only at the end)", lo=0, hi=1_000_000,
                                 words="preview every", problem=_WHOLE_STEPS, slider=(10, 1000, 10))
    checkpoint_every: int = setting(500, "a resumable checkpoint every N steps (0: only by time, at the end and "
                                    "on stop)", lo=0, hi=1_000_000, words="checkpoint every", problem=_WHOLE_STEPS,
                                    ui="the Train tab checkpoints four times a run")
    checkpoint_minutes: float = setting(
        5.0, "also a checkpoint when this many minutes have passed since the last (0 = off)", lo=0, hi=10_080,
        problem="checkpoint minutes must be between 0 (off) and 10,080 (a week) (got {value})",
        ui="the 5-minute safety net needs no knob in the browser")
    amp: bool = setting(True, "mixed precision: CUDA (bf16 or fp16), and bf16 on CPUs that compute it natively",
                        ui="chosen by the hardware")
    lr_drops: tuple[tuple[int, float], ...] = setting(
        (), "lower both learning rates after step STEP by FACTOR, e.g. 1000:0.1 (repeatable)", check=_lr_drops_problem,
        parse=parse_lr_drop, metavar="STEP:FACTOR", flags=("--lr-drop",),
        ui="a planned schedule; in the browser the buttons lower the rates while it trains")
    grow_steps: int = setting(
        0, "progressive growing: steps at each resolution below the output size, the first half of them fading it "
        "in (0: the first half of the run grows, every resolution an equal share)", lo=0, hi=1_000_000,
        words="grow steps", ui="the browser's runs grow during their first half (0, automatic)")
    auto_lr_drop: bool = setting(False, "lower both learning rates x0.1 when the losses oscillate without progress "
                                 "(measured as gandemo.gan.health says)")

    def __post_init__(self) -> None:
        if isinstance(self.lr_drops, list):  # as read back from state.json
            self.lr_drops = tuple(tuple(d) if isinstance(d, list) else d for d in self.lr_drops)

    @classmethod
    def rules(cls) -> dict[str, tuple[type, Rule]]:
        """name -> (type, Rule) for every field, in order."""
        return settings_table(cls)

    def validate(self) -> TrainConfig:
        problems: list[str] = []
        for name, (kind, rule) in self.rules().items():
            problem = rule.problem_with(name, kind, getattr(self, name))
            if problem and problem not in problems:  # the two widths share one sentence
                problems.append(problem)
        if not problems and self.batch_size % self.pack:
            problems.append(f"the batch size must divide by pack, the images D judges at once "
                            f"({self.batch_size} doesn't divide by {self.pack})")
        if problems:
            raise InvalidInputError("Invalid training settings: " + "; ".join(problems) + ".")
        return self

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def settings_table(config_class: type) -> dict[str, tuple[type, Rule]]:
    """name -> (type, Rule) of a settings dataclass like TrainConfig (tests pass a patched one)."""
    hints = typing.get_type_hints(config_class)
    return {f.name: (hints[f.name], f.metadata["rule"]) for f in fields(config_class)}
