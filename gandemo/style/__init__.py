"""Neural style transfer (Gatys et al.) on VGG19 features, no UI code.

    from gandemo.style import StyleSettings, stylize
    for event in stylize(content_image, [style_image], StyleSettings(steps=200), cancel=stop_event):
        ...                      # event.step / event.total_steps, event.*_loss, event.preview
    event.image                  # the last event carries the result (PIL RGB)

Modules: :mod:`~gandemo.style.transfer` (``stylize``, the loop), :mod:`~gandemo.style.settings`
(``StyleSettings``, ``StyleEvent``), :mod:`~gandemo.style.losses` (what the weights mean),
:mod:`~gandemo.style.optimize` (L-BFGS/Adam steps, cancellation, precision), :mod:`~gandemo.style.vgg`
(where the VGG19 weights come from) and :mod:`~gandemo.style.inputs` (how images are read: RGBA is
composited over white, grayscale becomes RGB).
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .inputs import MAX_INPUT_PIXELS, load_image
    from .layers import VGG19_LAYERS
    from .losses import LossTerms, StyleObjective, gram_matrix, total_variation
    from .settings import DEFAULT_STYLE_LAYERS, StyleEvent, StyleSettings
    from .transfer import max_output_side, stylize
    from .vgg import DEFAULT_VGG_REPO, VGGFeatures, load_vgg19, vgg_weights_path

__all__ = [
    "DEFAULT_STYLE_LAYERS", "DEFAULT_VGG_REPO", "MAX_INPUT_PIXELS", "VGG19_LAYERS", "LossTerms", "StyleEvent",
    "StyleObjective", "StyleSettings", "VGGFeatures", "gram_matrix", "load_image", "load_vgg19",
    "max_output_side", "stylize", "total_variation", "vgg_weights_path",
]
_WHERE = {".inputs": ("MAX_INPUT_PIXELS", "load_image"),
          ".losses": ("LossTerms", "StyleObjective", "gram_matrix", "total_variation"),
          ".settings": ("DEFAULT_STYLE_LAYERS", "StyleEvent", "StyleSettings"),
          ".transfer": ("max_output_side", "stylize"),
          ".layers": ("VGG19_LAYERS",),
          ".vgg": ("DEFAULT_VGG_REPO", "VGGFeatures", "load_vgg19", "vgg_weights_path")}
__getattr__ = lazy_exports(__name__, _WHERE)
