"""Recognise generator checkpoints by their state-dict signature and build a module for them.

Supported layouts (all DCGAN-style ``nn.Sequential`` stacks of ConvTranspose2d / BatchNorm2d /
ReLU, ending in ConvTranspose2d / Tanh, with convolutions at indices 0, 3, 6, ...):

- ``gandemo``: our native format, attribute ``net``, kernels 4 (stride 1 then 2), with config.json.
- ``huggan-dcgan``: huggingface/community-events ``huggan/pytorch/dcgan``, attribute ``model``.
- ``pytorch-examples-dcgan``: pytorch/examples ``dcgan/main.py`` ``netG_epoch_N.pth``, attribute ``main``.
- ``cryptopunks-gan``: nateraw/cryptopunks-gan ``generator.pth``, attribute ``network``,
  kernels 3,3,4,4 with strides 1,2,2,2 and paddings 0,1,0,1 (1 -> 3 -> 5 -> 12 -> 24 px).

Not a single stack: ``gandemo-msg``, gandemo's MSG-GAN generator (gandemo.gan.msg), recognised by its
``blocks.*`` and ``to_rgb.*`` tensors, its settings read from their shapes. A progressively grown generator
(``gandemo-progressive``, gandemo.gan.progressive) has the same tensors and draws its image the same way; only
its config.json says it was grown, so its weights alone load as an MSG-GAN.

Only tensors are inspected; the layout decides strides and paddings, which a state dict
does not record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UnsupportedCheckpointError
from .models import UpsampleSpec, output_size, sequential_generator
from .msg import build_msg_generator, looks_like_msg, msg_settings

WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / torch.compile


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    attribute: str
    kernels: tuple[int, ...] | None  # None: any number of 4x4 kernels (DCGAN)
    strides: tuple[int, ...] | None = None
    paddings: tuple[int, ...] | None = None


LAYOUTS = (
    Layout("gandemo", "gandemo DCGAN", "net", None),
    Layout("huggan-dcgan", "HugGAN DCGAN (huggingface/community-events)", "model", None),
    Layout("pytorch-examples-dcgan", "pytorch/examples DCGAN netG", "main", None),
    Layout("cryptopunks-gan", "CryptoPunks GAN (nateraw/cryptopunks-gan)", "network", (3, 3, 4, 4), (1, 2, 2, 2), (0, 1, 0, 1)),
)
MSG_LAYOUT = Layout("gandemo-msg", "gandemo MSG-GAN", "blocks", None)  # not a single stack: see build_generator
# a progressively grown generator (gandemo.gan.progressive): an MSG-GAN's weights; only config.json tells them apart
PROGRESSIVE_LAYOUT = Layout("gandemo-progressive", "gandemo Progressive GAN", "blocks", None)

SUPPORTED_TEXT = (
    "gandemo's native format (config.json + model.safetensors; DCGAN or MSG-GAN), the HugGAN DCGAN layout "
    "('model.N.*' keys, e.g. huggan/dcgan-mnist), pytorch/examples DCGAN netG ('main.N.*') and "
    "nateraw/cryptopunks-gan ('network.N.*')"
)


class SequentialGenerator(nn.Module):
    """A generator rebuilt from upsampling specs; parameters live under ``net`` like ours."""

    def __init__(self, specs: list[UpsampleSpec]):
        super().__init__()
        self.specs = specs
        self.latent_dim = specs[0].in_channels
        self.channels = specs[-1].out_channels
        self.image_size = output_size(specs)
        self.net = sequential_generator(specs)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.net(z)


def strip_wrappers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def describe_keys(state: dict[str, torch.Tensor], limit: int = 6) -> str:
    """A short, readable summary of a state dict: its top-level names and a few keys with shapes."""
    tops = sorted({k.split(".")[0] for k in state})
    sample = ", ".join(f"{k} {tuple(v.shape)}" for k, v in list(state.items())[:limit])
    return f"{len(state)} tensors under {tops} (e.g. {sample})"


_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)$")


def recognise(state: dict[str, torch.Tensor]) -> tuple[Layout, list[UpsampleSpec]]:
    """Find the layout of a generator state dict, or raise UnsupportedCheckpointError saying
    what was found and what is supported."""
    state = strip_wrappers(state)
    if not state:
        raise UnsupportedCheckpointError("The checkpoint is empty: it holds no tensors.")
    parsed = [_KEY.match(k) for k in state]
    attrs = {m.group(1) for m in parsed if m}
    if any(m is None for m in parsed) or len(attrs) != 1:
        raise UnsupportedCheckpointError(
            f"This checkpoint is not a generator layout gandemo knows: found {describe_keys(state)}. "
            f"Supported: {SUPPORTED_TEXT}."
        )
    attribute = attrs.pop()
    layout = next((lay for lay in LAYOUTS if lay.attribute == attribute), None)
    if layout is None:
        raise UnsupportedCheckpointError(
            f"Found an nn.Sequential named '{attribute}' ({describe_keys(state)}), which matches no supported "
            f"layout. Supported: {SUPPORTED_TEXT}."
        )

    # Conv-transpose weights are the 4-D tensors; they must sit at indices 0, 3, 6, ...
    convs = sorted((int(m.group(2)), state[k]) for k, m in zip(state, parsed) if m.group(3) == "weight" and state[k].dim() == 4)
    kernels = tuple(int(w.shape[-1]) for _, w in convs)
    problem = _check_sequence(state, attribute, convs)
    if problem is None:
        if layout.kernels is None:
            if any(k != 4 for k in kernels) or len(kernels) < 2:
                problem = f"a DCGAN generator has 4x4 kernels only; found kernels {list(kernels)}"
            else:
                strides = (1,) + (2,) * (len(kernels) - 1)
                paddings = (0,) + (1,) * (len(kernels) - 1)
        elif kernels != layout.kernels:
            problem = f"expected kernels {list(layout.kernels)}, found {list(kernels)}"
        else:
            strides, paddings = layout.strides, layout.paddings
    if problem is not None:
        raise UnsupportedCheckpointError(
            f"The tensors under '{attribute}' look like the {layout.description} layout but don't fit it: "
            f"{problem}. Found {describe_keys(state)}."
        )
    specs = [
        UpsampleSpec(int(w.shape[0]), int(w.shape[1]), int(w.shape[-1]), s, p)
        for (_, w), s, p in zip(convs, strides, paddings)
    ]
    if specs[-1].out_channels not in (1, 3, 4):
        raise UnsupportedCheckpointError(
            f"The {layout.description} checkpoint outputs {specs[-1].out_channels} channels; images need 1, 3 or 4."
        )
    return layout, specs


def _check_sequence(state: dict[str, torch.Tensor], attribute: str, convs: list[tuple[int, torch.Tensor]]) -> str | None:
    """Why the tensors are not a ConvT/BN/ReLU chain (or None when they are)."""
    if not convs:
        return "no convolution weights"
    indices = [i for i, _ in convs]
    if indices != list(range(0, 3 * len(convs), 3)):
        return f"convolutions at indices {indices}, expected 0, 3, 6, ..."
    for (i, w), (_, w_next) in zip(convs, convs[1:]):
        if w.shape[-1] != w.shape[-2]:
            return f"non-square kernel at index {i}"
        if w.shape[1] != w_next.shape[0]:
            return f"layer {i} outputs {w.shape[1]} channels but the next layer takes {w_next.shape[0]}"
        bn = state.get(f"{attribute}.{i + 1}.weight")
        if bn is None or bn.dim() != 1 or bn.shape[0] != w.shape[1]:
            return f"missing or mis-sized batch norm after layer {i}"
    return None


def build_generator(state: dict[str, torch.Tensor]) -> tuple[nn.Module, Layout]:
    """Recognise ``state`` and load it strictly into a fresh SequentialGenerator (an MSG-GAN's weights:
    into an MSGGenerator whose settings their shapes give)."""
    if looks_like_msg(strip_wrappers(state)):
        plain = strip_wrappers(state)
        module = build_msg_generator(msg_settings(plain), "weights file")
        load_strict(module, plain, MSG_LAYOUT.description)
        return module, MSG_LAYOUT
    layout, specs = recognise(state)
    state = strip_wrappers(state)
    module = SequentialGenerator(specs)
    renamed = {"net." + k.split(".", 1)[1]: v for k, v in state.items()}
    try:
        load_strict(module, renamed, layout.description)
    except UnsupportedCheckpointError as e:  # speak in the file's own key names
        raise UnsupportedCheckpointError(str(e).replace("'net.", f"'{layout.attribute}.")) from None
    return module, layout


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """load_state_dict(strict=True) with a message a person can act on."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            parts.append(f"wrong shapes {wrong[:3]}")
        raise UnsupportedCheckpointError(f"The weights don't match the {what} architecture: {'; '.join(parts)}.")
    module.load_state_dict(state, strict=True)
