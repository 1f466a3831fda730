"""MSG-GAN (Karnewar & Wang, 2020): multi-scale gradients, the lesson's second remedy for high resolution.

A plain DCGAN's discriminator sees only the finished image, so at 64 or 128 px its gradients reach the
generator's first (coarse) layers only through every layer above them, and the two networks easily stop
overlapping. MSG-GAN connects them at every scale instead:

- the generator is DCGAN's stack of transposed convolutions, and every block also draws its features as
  a small image through a 1x1 convolution ("toRGB"): images at 4x4, 8x8, ..., the output size. The last
  block's transposed convolution draws the full-size image itself, as DCGAN's does (a second colour
  mapping at the costliest resolution would only add time);
- the discriminator is DCGAN's stack of stride-2 convolutions, and at every depth it takes the image of
  the matching scale alongside its own features (MSG-GAN's "simple" combine: a concatenation of the
  channels), down to the 4x4 image next to its last features.

So D's gradients flow into each of G's blocks directly, from the 4x4 layout up to the fine detail.
Real images reach D as a pyramid made by average pooling. ``forward(z)`` returns the final image only, so
an MSG generator samples, exports and loads like a DCGAN one; ``scales(z)`` returns every scale.

Images here are lists ordered from the smallest scale (4x4) to the output size.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from ..errors import UnsupportedCheckpointError
from .augment import shift_images
from .models import (
    MODEL_CARD_TAGS,
    _check_architecture,
    _check_pack,
    _feature_widths,
    dcgan_init,
    discriminator_conv,
    discriminator_head,
    pack_images,
)
from .settings import ARCH_NAMES

# ARCHITECTURES: TrainConfig.arch's values; config.json's "arch" (absent: dcgan). progressive: gandemo.gan.progressive
MSG_TAGS = (*MODEL_CARD_TAGS, "msg-gan")
Images = torch.Tensor | list[torch.Tensor]  # one batch of images, or one per scale (smallest first)


def scale_sizes(image_size: int) -> list[int]:
    """The sizes an MSG-GAN of ``image_size`` px draws: [4, 8, ..., image_size]."""
    return [4 * 2**i for i in range(int(math.log2(image_size // 4)) + 1)]


class BlocksGenerator(nn.Module):
    """DCGAN's generator as a list of blocks, every hidden block with a 1x1 "toRGB" convolution: the weights of
    an MSG-GAN generator, and of a progressively grown one (gandemo.gan.progressive), which differ only in how
    they were trained. ``ARCH`` is what config.json's "arch" says; ``arch`` must match it."""

    ARCH = ""

    def __init__(self, image_size: int, channels: int, latent_dim: int, width: int, arch: str):
        super().__init__()
        _check_architecture(image_size, channels, latent_dim, width)
        if arch != self.ARCH:
            raise ValueError(f"a {type(self).__name__}'s arch is {self.ARCH!r}, got {arch!r}")
        self.image_size, self.channels, self.latent_dim, self.width, self.arch = image_size, channels, latent_dim, width, arch
        widths = _feature_widths(image_size, width)  # the hidden blocks' widths at 4, 8, ..., size / 2
        blocks = [nn.Sequential(nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=False),
                                nn.BatchNorm2d(widths[0]), nn.ReLU(True))]
        for w_in, w_out in zip(widths, widths[1:]):
            blocks.append(nn.Sequential(nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False),
                                        nn.BatchNorm2d(w_out), nn.ReLU(True)))
        blocks.append(nn.Sequential(nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()))
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.ModuleList(nn.Conv2d(w, channels, 1) for w in widths)  # one per hidden block
        dcgan_init(self)

    @property
    def sizes(self) -> list[int]:
        return scale_sizes(self.image_size)

    def forward(self, z: torch.Tensor, all_scales: bool = False) -> Images:
        if z.dim() == 2:
            z = z[:, :, None, None]
        h, images = z, []
        for block, to_rgb in zip(self.blocks, self.to_rgb):
            h = block(h)
            if all_scales:
                images.append(torch.tanh(to_rgb(h)))
        final = self.blocks[-1](h)
        return [*images, final] if all_scales else final

    def scales(self, z: torch.Tensor) -> list[torch.Tensor]:
        """The image at every scale, 4x4 first, the output size last."""
        return self(z, all_scales=True)


class MSGGenerator(
    BlocksGenerator,
    PyTorchModelHubMixin,
    library_name="gandemo",
    tags=list(MSG_TAGS),
    license="mit",
    pipeline_tag="unconditional-image-generation",
    repo_url="https://github.com/gandemo/gandemo",
):
    """Latent (N, latent_dim) -> image (N, channels, size, size) in [-1, 1]; ``scales(z)``: every scale.

    ``arch`` is only there so that config.json names the architecture ("arch": "msg")."""

    ARCH = "msg"

    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 100, width: int = 64,
                 arch: str = "msg"):
        super().__init__(image_size, channels, latent_dim, width, arch)


class MSGDiscriminator(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="gandemo",
    tags=list(MSG_TAGS),
    license="mit",
    repo_url="https://github.com/gandemo/gandemo",
):
    """Images at every scale (a list, 4x4 first; or one full-size batch, pooled into them) -> one logit per image
    (per ``pack`` consecutive images with PacGAN's packing, every scale packed alike)."""

    def __init__(self, image_size: int = 64, channels: int = 3, width: int = 64, spectral_norm: bool = False,
                 minibatch_std: bool = False, pack: int = 1):
        super().__init__()
        _check_architecture(image_size, channels, 1, width)
        self.image_size, self.channels, self.width, self.spectral_norm = image_size, channels, width, spectral_norm
        self.minibatch_std = minibatch_std
        self.pack = _check_pack(pack)
        channels *= pack  # every scale's images enter packed (models.pack_images)
        widths = list(reversed(_feature_widths(image_size, width)))  # e.g. [64, 128, 256, 512]

        conv = functools.partial(discriminator_conv, spectral_norm=spectral_norm)

        self.from_rgb = nn.Sequential(conv(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))
        # each block takes its features and the image of the same size, side by side ("simple" combine)
        self.blocks = nn.ModuleList(
            nn.Sequential(conv(w_in + channels, w_out, 4, 2, 1),
                          nn.Identity() if spectral_norm else nn.BatchNorm2d(w_out),  # as in DCGANDiscriminator
                          nn.LeakyReLU(0.2, inplace=True))
            for w_in, w_out in zip(widths, widths[1:]))
        self.final = discriminator_head(widths[-1] + channels, spectral_norm, minibatch_std)
        dcgan_init(self)

    def forward(self, images: Images) -> torch.Tensor:
        if isinstance(images, torch.Tensor):
            images = image_pyramid(images)
        sizes = scale_sizes(self.image_size)
        if len(images) != len(sizes) or any(x.shape[-1] != s for x, s in zip(images, sizes)):
            raise ValueError(f"the MSG discriminator takes images at {sizes} px, got "
                             f"{[tuple(x.shape[-2:]) for x in images]}")
        largest_first = [pack_images(x, self.pack) for x in images[::-1]]
        h = self.from_rgb(largest_first[0])
        for block, image in zip(self.blocks, largest_first[1:]):
            h = block(torch.cat([h, image], 1))
        return self.final(torch.cat([h, largest_first[-1]], 1)).flatten()


def image_pyramid(x: torch.Tensor) -> list[torch.Tensor]:
    """A full-size batch at every scale of an MSG-GAN (average pooling), 4x4 first."""
    pyramid = [x]
    while pyramid[-1].shape[-1] > 4:
        pyramid.append(F.avg_pool2d(pyramid[-1], 2))
    return pyramid[::-1]


# ----------------------------------------------------------------- batches that are one tensor or a list
def cat_images(a: Images, b: Images) -> Images:
    """Two batches one after the other (scale by scale for lists)."""
    if isinstance(a, torch.Tensor):
        return torch.cat([a, b])  # type: ignore[list-item]
    return [torch.cat([x, y]) for x, y in zip(a, b)]  # type: ignore[arg-type]


def detach_images(x: Images) -> Images:
    return x.detach() if isinstance(x, torch.Tensor) else [t.detach() for t in x]


def as_list(x: Images) -> list[torch.Tensor]:
    return [x] if isinstance(x, torch.Tensor) else list(x)


# ----------------------------------------------------------------- DiffAugment, the same at every scale
def augment_scales(images: Sequence[torch.Tensor], policy: tuple[str, ...]) -> list[torch.Tensor]:
    """DiffAugment (gandemo.gan.augment's policies and amounts) applied alike to every scale of each image:
    one draw of the random colour change, shift and cut-out per image, measured at the full size and
    applied at each scale in proportion (a shift of 8 px at 64 px is 4 px at 32 and 1 px at 8; at the
    coarsest scales a shift rounds to whole pixels). D so never sees a pyramid whose scales disagree."""
    images = list(images)
    full = images[-1]
    n, size, device = full.shape[0], full.shape[-1], full.device
    for name in policy:
        if name == "color":
            factors = [torch.rand(n, 1, 1, 1, device=device) for _ in range(3)]
            images = [_color(x, *factors) for x in images]
        elif name == "translation":
            reach = int(size * 0.125 + 0.5)
            shift = torch.randint(-reach, reach + 1, (2, n), device=device).float()  # full-size pixels
            images = [_translate(x, torch.round(shift * x.shape[-1] / size).long()) for x in images]
        elif name == "cutout":
            side = int(size * 0.5 + 0.5)
            centre = torch.randint(0, size + (1 - side % 2), (2, n), device=device)
            corner = centre - side // 2  # full-size pixels
            images = [_cutout(x, corner, side, size) for x in images]
        else:
            raise ValueError(f"unknown DiffAugment policy {name}")
    return images


def _color(x: torch.Tensor, brightness: torch.Tensor, saturation: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
    """augment._color with given random draws (each (N,1,1,1) in [0, 1))."""
    rgb_channels = min(3, x.shape[1])
    c, rest = x[:, :rgb_channels], x[:, rgb_channels:]
    c = c + (brightness.to(x.dtype) - 0.5)
    if rgb_channels == 3:
        mean = c.mean(dim=1, keepdim=True)
        c = (c - mean) * (saturation.to(x.dtype) * 2) + mean
    mean = c.mean(dim=(1, 2, 3), keepdim=True)
    c = (c - mean) * (contrast.to(x.dtype) + 0.5) + mean
    return torch.cat([c, rest], dim=1) if rest.shape[1] else c


def _translate(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift image i by shift[:, i] = (dy, dx) pixels, filling with the background value -1 (augment._translation)."""
    n = x.shape[0]
    return shift_images(x, shift[0].view(n, 1, 1), shift[1].view(n, 1, 1))


def _cutout(x: torch.Tensor, corner: torch.Tensor, side: int, size: int) -> torch.Tensor:
    """Blank the square [corner, corner + side) (full-size pixels) at this scale: the pixels whose centres fall in it."""
    n, _, h, w = x.shape
    step = size / h
    centres_y = (torch.arange(h, device=x.device).view(1, h, 1) + 0.5) * step
    centres_x = (torch.arange(w, device=x.device).view(1, 1, w) + 0.5) * step
    y0, x0 = corner[0].view(n, 1, 1), corner[1].view(n, 1, 1)
    inside = (centres_y >= y0) & (centres_y < y0 + side) & (centres_x >= x0) & (centres_x < x0 + side)
    return torch.where(inside.unsqueeze(1), torch.zeros_like(x), x)


# ----------------------------------------------------------------- checkpoints
def looks_like_msg(state: dict[str, torch.Tensor]) -> bool:
    """Whether a (wrapper-free) state dict has an MSG generator's signature: ``blocks.*`` and ``to_rgb.*``."""
    return any(k.startswith("to_rgb.") for k in state) and any(k.startswith("blocks.") for k in state)


def msg_settings(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """image_size, channels, latent_dim and width of an MSG generator, read from its weights' shapes
    (the number of blocks gives the size); a state dict that fits no MSG generator raises
    UnsupportedCheckpointError saying what is missing."""
    def weight(i: int) -> torch.Tensor:
        w = state.get(f"blocks.{i}.0.weight")
        if w is None or w.dim() != 4:
            raise UnsupportedCheckpointError(
                f"The tensors look like a gandemo MSG-GAN generator but block {i} has no transposed convolution weight.")
        return w

    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("blocks.") and k.split(".")[1].isdigit()})
    if blocks != list(range(len(blocks))) or len(blocks) < 2:
        raise UnsupportedCheckpointError(
            f"The tensors look like a gandemo MSG-GAN generator but its blocks are numbered {blocks[:8]}; "
            "expected at least two, numbered from 0 without gaps.")
    first, hidden, last = weight(0), weight(len(blocks) - 2), weight(len(blocks) - 1)
    return {"image_size": 4 * 2 ** (len(blocks) - 1), "channels": int(last.shape[1]),
            "latent_dim": int(first.shape[0]), "width": int(hidden.shape[1])}


def build_msg_generator(settings: dict[str, int], what: str = "MSG-GAN",
                        cls: type[BlocksGenerator] = MSGGenerator) -> BlocksGenerator:
    """An MSGGenerator (or ``cls``, e.g. a ProgressiveGenerator: the same weights) for ``settings`` (from
    config.json or the weights), or UnsupportedCheckpointError."""
    try:
        return cls(**{k: int(settings[k]) for k in ("image_size", "channels", "latent_dim", "width")})
    except (KeyError, TypeError, ValueError) as e:
        raise UnsupportedCheckpointError(
            f"The {what} describes no valid gandemo {ARCH_NAMES[cls.ARCH]} generator: {e}.") from e
