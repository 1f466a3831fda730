"""The lesson's scenarios: settings that really produce each failure on the ring of 8 Gaussians,
and the change that really cures it. Nothing is scripted: the numbers in
``benchmarks/RESULTS.md`` ("Lesson lab presets") come from ``benchmarks/lab_presets.py``.

The UI translates ``problem`` and ``cure_text`` by preset name; the English here is short on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError
from .config import LabConfig


@dataclass(frozen=True)
class Preset:
    """``overrides`` change :class:`LabConfig`'s defaults; ``cure`` is the config change that fixes
    the problem; ``cure_is_live`` says it can be applied to a running lab (``Lab.update_config``),
    otherwise it needs a fresh lab (``preset_config(name, cure=True)``)."""

    name: str
    overrides: dict[str, Any]
    cure: dict[str, Any]
    cure_is_live: bool
    problem: str
    cure_text: str
    expected: dict[str, Any] = field(default_factory=dict)  # what the benchmark checks, for the record

    @property
    def config(self) -> LabConfig:
        return LabConfig(**self.overrides)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "default", {}, cure={}, cure_is_live=True,
            problem="A healthy run: G spreads over all 8 modes.",
            cure_text="Nothing to cure.",
        ),
        Preset(
            # D learns 10x slower than G, so G has time to pile every point onto the one place D
            # likes best; by the time D objects, G jumps to the next favourite: collapse + hopping.
            "mode-collapse", {"lr_d": 1e-4},
            cure={"minibatch_discrimination": True}, cure_is_live=False,
            problem="G piles its points onto one spot and hops from mode to mode.",
            cure_text="Let D see how spread out each batch is (minibatch diversity).",
        ),
        Preset(
            # Five D updates per G update at a 10x larger learning rate: D separates the two sets
            # perfectly within a few steps. G uses plain SGD here because Adam divides each step by
            # the gradient's recent size and so hides, for a while, how small the gradient became.
            "d-overpowers", {"loss": "minimax", "opt_g": "sgd", "lr_g": 0.01, "lr_d": 1e-2, "d_steps": 5},
            # Balance, not a new loss: one D update per step at G's Adam-scale rate, skipped while
            # D's loss is below 1.2 (near the 1.39 of a D that can't tell). From the start: once D
            # has won under minimax, G's gradient is already gone.
            cure={"d_steps": 1, "lr_d": 1e-3, "d_skip_threshold": 1.2}, cure_is_live=False,
            problem="D learns much faster than G: D(G(z)) falls to 0 and G stalls.",
            cure_text="Slow D down: one D step, a smaller D learning rate, skip D while it wins.",
        ),
        Preset(
            "lr-too-high", {"lr_g": 1e-2, "lr_d": 1e-2},
            cure={"lr_g": 1e-3, "lr_d": 1e-3}, cure_is_live=True,
            problem="Learning rates too high: the points swing around and never settle.",
            cure_text="Lower both learning rates tenfold, even mid-run.",
        ),
        Preset(
            # Minimax loss, a D three updates ahead, plain SGD for G (see d-overpowers): D soon calls
            # every generated point fake, where log(1 - D) is flat, so G's gradient all but vanishes.
            "vanishing-gradient", {"loss": "minimax", "opt_g": "sgd", "lr_g": 0.005, "lr_d": 3e-3, "d_steps": 3},
            cure={"loss": "nonsaturating"}, cure_is_live=True,
            problem="With the minimax loss a confident D gives G almost no gradient: nothing moves.",
            cure_text="Switch G to the non-saturating loss.",
        ),
    )
}


def preset_config(name: str, cure: bool = False) -> LabConfig:
    """The config of preset ``name``, with its cure applied if ``cure``."""
    if name not in PRESETS:
        raise InvalidInputError(f"Unknown preset '{name}'; choose one of: {', '.join(PRESETS)}.")
    preset = PRESETS[name]
    config = preset.config
    return config.replace(**preset.cure) if cure else config
