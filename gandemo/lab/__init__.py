"""The lesson lab: a live 2D GAN on toy data (no gradio here; the UI and the CLI call into it).

``Lab`` trains, ``render_frame`` draws, ``run_lab`` runs a config to the end in one call, and
``PRESETS`` holds the measured lesson scenarios (mode collapse, a D that overpowers G, ...).
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .config import DATASETS, FIELD_RULES, LabConfig
    from .data import ToyData, make_dataset, points_from_sketch, points_from_text
    from .lab import Lab
    from .presets import PRESETS, Preset, preset_config
    from .render import render_frame
    from .runner import LabResult, run_lab

__all__ = [
    "DATASETS", "FIELD_RULES", "PRESETS", "Lab", "LabConfig", "LabResult", "Preset", "ToyData", "make_dataset",
    "points_from_sketch", "points_from_text", "preset_config", "render_frame", "run_lab",
]
_WHERE = {".config": ("DATASETS", "FIELD_RULES", "LabConfig"), ".lab": ("Lab",),
          ".data": ("ToyData", "make_dataset", "points_from_sketch", "points_from_text"),
          ".presets": ("PRESETS", "Preset", "preset_config"), ".render": ("render_frame",), ".runner": ("LabResult", "run_lab")}
__getattr__ = lazy_exports(__name__, _WHERE)
