"""The style loss made visible: a style image's Gram matrix at one VGG layer, as a heatmap.

Entry (i, j) is how strongly feature maps i and j are active *together*, averaged over all positions:
that is what the style loss matches, and why it keeps textures and colours but forgets where things
are. Only the first ``channels`` channels are drawn (a deep layer has 512: a 512x512 picture of dots
says less than a readable 64x64 corner of it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import InvalidInputError
from .inputs import ImageInput, fit_long_side, load_image, pil_to_tensor, resize
from .layers import VGG19_LAYERS
from .losses import gram_matrix
from .vgg import VGGFeatures

# a perceptually ordered dark-blue -> teal -> yellow ramp (anchors of the viridis colour map)
_RAMP = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], dtype=np.float32)


@dataclass
class GramView:
    image: Image.Image  # the heatmap, ``size`` x ``size``
    layer: str
    channels_total: int
    channels_shown: int
    positions: int  # H*W of the feature map the matrix averages over


def _colour(values: np.ndarray) -> np.ndarray:
    x = np.clip(values, 0, 1) * (len(_RAMP) - 1)
    lo = np.floor(x).astype(int).clip(0, len(_RAMP) - 2)
    frac = (x - lo)[..., None]
    return (_RAMP[lo] * (1 - frac) + _RAMP[lo + 1] * frac).astype(np.uint8)


@torch.no_grad()
def gram_heatmap(source: ImageInput, layer: str, vgg: VGGFeatures, long_side: int = 256, channels: int = 64,
                 size: int = 384) -> GramView:
    """The Gram matrix of ``source``'s features at ``layer`` (e.g. "relu2_1"), drawn as a heatmap."""
    if layer not in VGG19_LAYERS:
        raise InvalidInputError(f"'{layer}' is not a VGG19 layer (e.g. relu1_1, relu3_1, relu5_1).")
    image = load_image(source, "style image")
    image = resize(image, fit_long_side(image.size, long_side))
    device = next(vgg.parameters()).device
    features = vgg(pil_to_tensor(image, device), [layer])[layer].float()
    gram = gram_matrix(features)[0].cpu()
    shown = min(channels, gram.shape[0])
    block = gram[:shown, :shown].numpy()
    # square root: a few strongly co-active pairs would otherwise turn the rest of the map black
    scaled = np.sqrt(np.maximum(block, 0) / max(float(block.max()), 1e-12))
    heat = Image.fromarray(_colour(scaled), "RGB").resize((size, size), Image.Resampling.NEAREST)
    return GramView(heat, layer, int(gram.shape[0]), shown, int(features.shape[2] * features.shape[3]))
