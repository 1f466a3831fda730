"""VGG19's layer names (conv1_1, relu1_1, ..., pool5) and where each sits in ``vgg19().features``, without
torch: style settings are checked against them before torch is imported (the command line answers at once).
"""

from __future__ import annotations

from ..errors import InvalidInputError

__all__ = ["CONV_CHANNELS", "LAYER_INDEX", "VGG19_LAYERS", "layer_index"]

# torchvision's cfg "E": channel counts per conv, "M" = 2x2 pooling.
_VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)


def _layer_table() -> tuple[list[str], dict[int, tuple[int, int]]]:
    """Names of ``vgg19().features[i]`` (conv1_1, relu1_1, ..., pool5) and, per conv index, (in, out)."""
    names: list[str] = []
    convs: dict[int, tuple[int, int]] = {}
    block, n_in, in_block = 1, 3, 0
    for v in _VGG19_CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, in_block = block + 1, 0
        else:
            in_block += 1
            convs[len(names)] = (n_in, int(v))
            names += [f"conv{block}_{in_block}", f"relu{block}_{in_block}"]
            n_in = int(v)
    return names, convs


VGG19_LAYERS, CONV_CHANNELS = _layer_table()
LAYER_INDEX = {name: i for i, name in enumerate(VGG19_LAYERS)}


def layer_index(name: str) -> int:
    """Index in ``vgg19().features`` of a layer name like 'relu4_2' (InvalidInputError if unknown)."""
    try:
        return LAYER_INDEX[name]
    except KeyError:
        raise InvalidInputError(
            f"'{name}' is not a VGG19 layer; use names like conv1_1, relu1_1 ... relu5_4 (or pool1 ... pool5)."
        ) from None
