"""Progressive growing (ProGAN; Karras et al., 2018): the lesson's first remedy for high resolution.

Instead of asking both networks to learn a 64 or 128 px image at once, training starts at 4x4, where a
GAN learns the rough layout in few steps, and the networks grow: every ``grow_steps`` steps a new
resolution is added, twice the last. A new resolution is faded in smoothly over the first half of its
steps (``alpha`` from 0 to 1): G's output is a blend of the previous resolution's image, upsampled, and the
new layer's image; D reads a blend of the image downsampled through its previous entry and the image
through the new layer. Real images are shown to D at the resolution of the moment, blended the same way.
After the last resolution (the output size) is faded in, training goes on at full size.

The networks here are DCGAN's, grown:

- ``ProgressiveGenerator`` has exactly the weights of gandemo's MSG-GAN generator (``gandemo.gan.msg``):
  DCGAN's blocks, each with a 1x1 "toRGB" convolution that draws its features as an image. While it grows,
  the newest block's toRGB is the output; once grown, the last block (DCGAN's final transposed convolution)
  draws the full-size image, so ``forward(z)`` is a DCGAN generator's and a grown model samples, exports
  and loads like any other. config.json says ``"arch": "progressive"``.
- ``ProgressiveDiscriminator`` is DCGAN's discriminator with a 1x1 "fromRGB" entry at every resolution
  below the full size (a DCGAN discriminator enters only at the full size).

``GrowthSchedule`` maps a training step to (stage, alpha): stage i trains at ``4 * 2**i`` px.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

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
from .msg import BlocksGenerator, scale_sizes

PROGRESSIVE_TAGS = (*MODEL_CARD_TAGS, "progressive-growing")


@dataclass(frozen=True)
class GrowthSchedule:
    """Which resolution a step trains at: stage i (``sizes[i]`` px) starts at step ``i * grow_steps``; every
    stage after the first fades its resolution in over its first ``grow_steps // 2`` steps (at least one);
    the last stage (the output size) lasts to the end of the run."""

    image_size: int
    grow_steps: int

    @property
    def sizes(self) -> list[int]:
        return scale_sizes(self.image_size)

    @property
    def full_size_step(self) -> int:
        """The first step that trains at the output size (its fade-in still under way)."""
        return (len(self.sizes) - 1) * self.grow_steps

    @property
    def fade_steps(self) -> int:
        return max(1, self.grow_steps // 2)

    @property
    def grown_step(self) -> int:
        """The steps a run needs to be fully grown: the output size reached and faded in."""
        return self.full_size_step + self.fade_steps

    def at(self, step: int) -> tuple[int, float]:
        """(stage, alpha) of the step numbered ``step`` (0 = the first step of the run)."""
        stage = min(step // self.grow_steps, len(self.sizes) - 1)
        if stage == 0:
            return 0, 1.0
        into = step - stage * self.grow_steps
        return stage, min(1.0, (into + 1) / self.fade_steps)

    @staticmethod
    def automatic(image_size: int, steps: int) -> int:
        """grow_steps for a run of ``steps`` when none is given: the first half of the run grows, every
        resolution below the output size getting an equal share (at least one step each)."""
        return max(1, steps // (2 * (len(scale_sizes(image_size)) - 1)))


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Twice the size, every pixel a 2x2 block (ProGAN's nearest-neighbour upsampling)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def shrink(x: torch.Tensor, size: int) -> torch.Tensor:
    """Full-size images at ``size`` px by average pooling (how real images are shown at a smaller stage)."""
    factor = x.shape[-1] // size
    return F.avg_pool2d(x, factor) if factor > 1 else x


def blend_real(x: torch.Tensor, size: int, alpha: float) -> torch.Tensor:
    """Real images as D sees them at ``size`` px while that resolution fades in: the ``size`` px image blended
    with its half-size version upsampled (alpha 1: the ``size`` px image alone)."""
    x = shrink(x, size)
    if alpha >= 1.0:
        return x
    return torch.lerp(upsample(F.avg_pool2d(x, 2)), x, alpha)


class ProgressiveGenerator(
    BlocksGenerator,
    PyTorchModelHubMixin,
    library_name="gandemo",
    tags=list(PROGRESSIVE_TAGS),
    license="mit",
    pipeline_tag="unconditional-image-generation",
    repo_url="https://github.com/gandemo/gandemo",
):
    """Latent (N, latent_dim) -> image (N, channels, size, size) in [-1, 1]; ``grown(z, stage, alpha)``: the image
    while growing (``4 * 2**stage`` px). The weights are an MSG-GAN generator's (see the module's text)."""

    ARCH = "progressive"

    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 100, width: int = 64,
                 arch: str = "progressive"):
        super().__init__(image_size, channels, latent_dim, width, arch)

    def forward(self, z: torch.Tensor, all_scales: bool = False, stage: int | None = None,
                alpha: float = 1.0) -> torch.Tensor | list[torch.Tensor]:
        """The full-size image (``stage`` None), or ``grown(z, stage, alpha)``: the training loop's call."""
        if stage is None:
            return super().forward(z, all_scales)
        return self.grown(z, stage, alpha)

    def grown(self, z: torch.Tensor, stage: int, alpha: float = 1.0) -> torch.Tensor:
        """The image at ``sizes[stage]`` px, the newest resolution blended in by ``alpha``."""
        last = len(self.blocks) - 1
        if not 0 <= stage <= last:
            raise ValueError(f"stage must be between 0 and {last}, got {stage}")
        h = z[:, :, None, None] if z.dim() == 2 else z
        for block in self.blocks[:stage]:
            h = block(h)  # the features the stage before drew its image from (at stage 0: the latent)
        new = self.blocks[stage](h)
        image = new if stage == last else torch.tanh(self.to_rgb[stage](new))  # the last block draws the image
        if stage == 0 or alpha >= 1.0:
            return image
        return torch.lerp(upsample(torch.tanh(self.to_rgb[stage - 1](h))), image, alpha)


class ProgressiveDiscriminator(nn.Module):
    """Images at ``4 * 2**stage`` px -> one logit per image. At full size it is DCGAN's discriminator; below,
    images enter through a 1x1 "fromRGB" convolution at the depth whose features have their size."""

    def __init__(self, image_size: int = 64, channels: int = 3, width: int = 64, spectral_norm: bool = False,
                 minibatch_std: bool = False, pack: int = 1):
        super().__init__()
        _check_architecture(image_size, channels, 1, width)
        self.image_size, self.channels, self.width, self.spectral_norm = image_size, channels, width, spectral_norm
        self.minibatch_std = minibatch_std
        self.pack = _check_pack(pack)
        channels *= pack  # images enter packed (models.pack_images): one logit per pack
        widths = list(reversed(_feature_widths(image_size, width)))  # features at size/2, size/4, ..., 4

        conv = functools.partial(discriminator_conv, spectral_norm=spectral_norm)

        self.first = nn.Sequential(conv(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))
        self.blocks = nn.ModuleList(
            nn.Sequential(conv(w_in, w_out, 4, 2, 1), nn.Identity() if spectral_norm else nn.BatchNorm2d(w_out),
                          nn.LeakyReLU(0.2, inplace=True))
            for w_in, w_out in zip(widths, widths[1:]))
        # from_rgb[i] enters images of sizes[i] px (4, 8, ..., size/2) as the features of that size
        self.from_rgb = nn.ModuleList(
            nn.Sequential(conv(channels, w, 1, 1, 0), nn.LeakyReLU(0.2, inplace=True)) for w in reversed(widths))
        self.final = discriminator_head(widths[-1], spectral_norm, minibatch_std)
        dcgan_init(self)

    @property
    def sizes(self) -> list[int]:
        return scale_sizes(self.image_size)

    def _enter(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        """Features of size ``sizes[stage]`` / 2 (full size) or ``sizes[stage]`` (below) from images at that stage."""
        return self.first(x) if stage == len(self.sizes) - 1 else self.from_rgb[stage](x)

    def _block(self, size: int) -> int:
        """The index of the block that halves features of ``size`` px (blocks[j]: (image_size / 2) / 2**j px)."""
        return len(self.blocks) - int(math.log2(size // 4))

    def _down(self, h: torch.Tensor, size: int) -> torch.Tensor:
        """Features of ``size`` px through the blocks down to 4x4."""
        for block in self.blocks[self._block(size):]:
            h = block(h)
        return h

    def forward(self, x: torch.Tensor, stage: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        sizes = self.sizes
        stage = len(sizes) - 1 if stage is None else stage
        if not 0 <= stage < len(sizes) or x.shape[-1] != sizes[stage]:
            raise ValueError(f"the progressive discriminator at stage {stage} takes {sizes[min(max(stage, 0), len(sizes) - 1)]} px "
                             f"images, got {tuple(x.shape[-2:])}")
        full = stage == len(sizes) - 1
        x = pack_images(x, self.pack)
        h = self._enter(x, stage)
        size = sizes[stage] // 2 if full else sizes[stage]
        if stage > 0 and alpha < 1.0:  # fading in: the previous entry reads the image at half the size
            if not full:
                h = self.blocks[self._block(size)](h)
                size //= 2
            h = torch.lerp(self.from_rgb[stage - 1](F.avg_pool2d(x, 2)), h, alpha)
        return self.final(self._down(h, size)).flatten()
