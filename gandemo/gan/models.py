"""DCGAN generator and discriminator (Radford et al., 2015).

Both networks are plain ``nn.Sequential`` stacks held in an attribute named ``net``.
The generator maps a latent vector, shaped (N, latent_dim, 1, 1), to an image in [-1, 1]
through a 4x4 transposed convolution followed by stride-2 upsampling blocks; the
discriminator mirrors it and ends in one logit per image.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from .settings import SUPPORTED_CHANNELS, SUPPORTED_SIZES

MAX_WIDTH_MULTIPLIER = 8  # feature maps never grow beyond width * 8 (keeps 128 px models small)

MODEL_CARD_TAGS = ("gan", "dcgan", "unconditional-image-generation", "gandemo", "pytorch")


@dataclass(frozen=True)
class UpsampleSpec:
    """One transposed convolution of a DCGAN-style generator."""

    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int

    def output_size(self, input_size: int) -> int:
        return (input_size - 1) * self.stride - 2 * self.padding + self.kernel


def sequential_generator(specs: list[UpsampleSpec]) -> nn.Sequential:
    """ConvTranspose -> BatchNorm -> ReLU blocks; the last block is ConvTranspose -> Tanh.

    Layer indices are the ones used by the DCGAN reference code (conv at 0, 3, 6, ...),
    so state dicts of the reference implementations load into it unchanged.
    """
    layers: list[nn.Module] = []
    for i, spec in enumerate(specs):
        layers.append(
            nn.ConvTranspose2d(
                spec.in_channels, spec.out_channels, spec.kernel, spec.stride, spec.padding, bias=False
            )
        )
        if i < len(specs) - 1:
            layers += [nn.BatchNorm2d(spec.out_channels), nn.ReLU(True)]
        else:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def output_size(specs: list[UpsampleSpec]) -> int:
    size = 1
    for spec in specs:
        size = spec.output_size(size)
    return size


def _check_architecture(image_size: int, channels: int, latent_dim: int, width: int) -> None:
    if image_size not in SUPPORTED_SIZES:
        raise ValueError(f"image_size must be one of {SUPPORTED_SIZES}, got {image_size}")
    if channels not in SUPPORTED_CHANNELS:
        raise ValueError(f"channels must be one of {SUPPORTED_CHANNELS}, got {channels}")
    if not 1 <= latent_dim <= 4096:
        raise ValueError(f"latent_dim must be between 1 and 4096, got {latent_dim}")
    if not 1 <= width <= 1024:
        raise ValueError(f"width must be between 1 and 1024, got {width}")


MAX_PACK = 4  # PacGAN's paper packs 2 to 4 images; more makes D's one logit say little about each image


def _check_pack(pack: int) -> int:
    if isinstance(pack, bool) or not isinstance(pack, int) or not 1 <= pack <= MAX_PACK:
        raise ValueError(f"pack must be a whole number from 1 to {MAX_PACK}, got {pack!r}")
    return pack


def _feature_widths(image_size: int, width: int) -> list[int]:
    """Feature-map widths from the 4x4 stage up to the last hidden stage, e.g. [256, 128, 64]."""
    n_up = int(math.log2(image_size // 4))  # stride-2 stages after the 4x4 stem
    return [width * min(2 ** (n_up - 1 - i), MAX_WIDTH_MULTIPLIER) for i in range(n_up)]


def dcgan_generator_specs(image_size: int, channels: int, latent_dim: int, width: int) -> list[UpsampleSpec]:
    widths = _feature_widths(image_size, width)
    specs = [UpsampleSpec(latent_dim, widths[0], 4, 1, 0)]
    for w_in, w_out in zip(widths, widths[1:] + [channels]):
        specs.append(UpsampleSpec(w_in, w_out, 4, 2, 1))
    return specs


def discriminator_conv(c_in: int, c_out: int, k: int, s: int, p: int, spectral_norm: bool) -> nn.Module:
    """A discriminator's bias-free convolution, under spectral norm when asked (DCGAN, MSG-GAN, progressive)."""
    layer = nn.Conv2d(c_in, c_out, k, s, p, bias=False)
    return nn.utils.parametrizations.spectral_norm(layer) if spectral_norm else layer


class MinibatchStd(nn.Module):
    """ProGAN's minibatch standard deviation (Karras et al., 2018): one more feature map, how much the images
    of a small group differ from each other, averaged over features and positions.

    A generator that draws the same few things makes groups with a small spread, which D can now see; so
    variety pays, a remedy against mode collapse. Groups are consecutive images (``group`` or the largest
    size under it that divides the batch), so a batch of real images followed by fakes is never mixed
    in a group when each half divides by the group size."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        g = next(g for g in range(min(self.group, n), 0, -1) if n % g == 0)
        spread = x.float().reshape(n // g, g, -1).var(dim=1, unbiased=False).add(1e-8).sqrt().mean(dim=1)
        feature = spread.to(x.dtype).repeat_interleave(g).reshape(n, 1, 1, 1).expand(n, 1, h, w)
        return torch.cat([x, feature], 1)


def pack_images(x: torch.Tensor, pack: int) -> torch.Tensor:
    """PacGAN's packing: a batch of n images -> n / ``pack`` samples, each ``pack`` consecutive images stacked
    along the channels. D then judges a few images at once and gives one logit for them all: a generator
    whose images are too alike (or too often of one kind) makes packs no real pack looks like, which a
    one-image D cannot see (Lin et al., 2018, "PacGAN"). A batch of real images followed by fakes never mixes
    the two in a pack when each half divides by ``pack``."""
    if pack == 1:
        return x
    n = x.shape[0]
    if n % pack:
        raise ValueError(f"a batch of {n} images can't be packed in groups of {pack}")
    return x.reshape(n // pack, pack * x.shape[1], *x.shape[2:])


def discriminator_head(c_in: int, spectral_norm: bool, minibatch_std: bool) -> nn.Module:
    """The last layer of every discriminator: 4x4 features -> one logit, after the minibatch spread when asked."""
    if not minibatch_std:
        return discriminator_conv(c_in, 1, 4, 1, 0, spectral_norm)
    return nn.Sequential(MinibatchStd(), discriminator_conv(c_in + 1, 1, 4, 1, 0, spectral_norm))


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="gandemo",
    tags=list(MODEL_CARD_TAGS),
    license="mit",
    pipeline_tag="unconditional-image-generation",
    repo_url="https://github.com/gandemo/gandemo",
):
    """Latent (N, latent_dim) or (N, latent_dim, 1, 1) -> image (N, channels, size, size) in [-1, 1]."""

    def __init__(self, image_size: int = 32, channels: int = 1, latent_dim: int = 100, width: int = 64):
        super().__init__()
        _check_architecture(image_size, channels, latent_dim, width)
        self.image_size = image_size
        self.channels = channels
        self.latent_dim = latent_dim
        self.width = width
        self.net = sequential_generator(dcgan_generator_specs(image_size, channels, latent_dim, width))
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.net(z)


class DCGANDiscriminator(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="gandemo",
    tags=list(MODEL_CARD_TAGS),
    license="mit",
    repo_url="https://github.com/gandemo/gandemo",
):
    """Image (N, channels, size, size) -> one real/fake logit per image, shape (N,); with ``pack`` > 1 one
    logit per ``pack`` consecutive images (PacGAN), shape (N / pack,)."""

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 1,
        width: int = 64,
        spectral_norm: bool = False,
        minibatch_std: bool = False,
        pack: int = 1,
    ):
        super().__init__()
        _check_architecture(image_size, channels, 1, width)
        self.image_size = image_size
        self.channels = channels
        self.width = width
        self.spectral_norm = spectral_norm
        self.minibatch_std = minibatch_std
        self.pack = _check_pack(pack)
        widths = list(reversed(_feature_widths(image_size, width)))  # e.g. [64, 128, 256]

        conv = functools.partial(discriminator_conv, spectral_norm=spectral_norm)

        layers: list[nn.Module] = [conv(channels * pack, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for w_in, w_out in zip(widths, widths[1:]):
            layers.append(conv(w_in, w_out, 4, 2, 1))
            # Batch norm fights spectral norm's Lipschitz bound, so it is left out when SN is on.
            layers.append(nn.Identity() if spectral_norm else nn.BatchNorm2d(w_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.net = nn.Sequential(*layers, discriminator_head(widths[-1], spectral_norm, minibatch_std))
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pack_images(x, self.pack)).flatten()
