"""The lesson lab: a live 2D GAN on toy data (no gradio here; the UI and the CLI call into it).

``Lab`` trains, ``render_frame`` draws, ``run_lab`` runs a config to the end in one call, and
``PRESETS`` holds the measured lesson scenarios (mode collapse, a D that overpowers G, ...).
"""

from .data import DATASETS, ToyData, make_dataset, points_from_sketch, points_from_text
from .lab import FIELD_RULES, Lab, LabConfig
from .presets import PRESETS, Preset, preset_config
from .render import render_frame
from .runner import LabResult, run_lab

__all__ = [
    "DATASETS", "FIELD_RULES", "PRESETS", "Lab", "LabConfig", "LabResult", "Preset", "ToyData", "make_dataset",
    "points_from_sketch", "points_from_text", "preset_config", "render_frame", "run_lab",
]
