"""The finished training set and the step that turns prepared images into one uint8 tensor."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from gandemo.intake.decode import Prepared
from gandemo.intake.options import Color, IntakeOptions
from gandemo.intake.reasons import list_skipped


@dataclass
class Dataset:
    """User images ready for training.

    images: uint8 tensor (N, channels, size, size), on the training device when it fits.
    names: the file (or zip entry) each image came from, in order.
    skipped: (name, reason) for every file that was not used; the reason starts with a keyword
        such as "not an image", "truncated", "too large".
    ignored: hidden and system files (``.DS_Store``, ``__MACOSX/...``) passed over silently.
    warnings: sentences worth showing (tiny images, animations reduced to a frame, ...).
    """

    images: torch.Tensor
    names: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def summary(self) -> str:
        """``Used 187 of 200 files; skipped: notes.txt (not an image), b.jpg (truncated).``"""
        total = len(self.names) + len(self.skipped)
        text = f"Used {len(self.names)} of {total} files"
        if self.skipped:
            text += f"; skipped: {list_skipped(self.skipped)}"
        if self.ignored:
            n = len(self.ignored)
            text += f"; ignored {n} hidden or system file{'s' if n != 1 else ''}"
        return text + "."

    def as_float(self, index: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Images (all, or ``images[index]``) as float in [-1, 1], the generator's range."""
        x = self.images if index is None else self.images[index]
        return x.float().div_(127.5).sub_(1.0)


def choose_channels(prepared: list[Prepared], options: IntakeOptions) -> int:
    if options.channels != "auto":
        return int(options.channels)
    if options.alpha == "keep" and any(p.transparent for p in prepared):
        return 4
    if prepared and all(p.gray for p in prepared):
        return 1
    return 3


def assemble(prepared: list[Prepared], channels: int, options: IntakeOptions) -> np.ndarray:
    """Stack into (N, size, size, channels) uint8, flattening or dropping colour/alpha as needed."""
    size = options.size
    out = np.empty((len(prepared), size, size, channels), np.uint8)
    background = options.background_rgb
    for i, p in enumerate(prepared):
        out[i] = convert_pixels(p.pixels, p.mode, channels, background)
    return out


def convert_pixels(pixels: np.ndarray, mode: str, channels: int, background: Color) -> np.ndarray:
    """(H, W, k) in ``mode`` -> (H, W, channels); alpha is composited on ``background`` when dropped."""
    has_alpha = mode in ("LA", "RGBA")
    color = pixels[..., :-1] if has_alpha else pixels
    alpha = pixels[..., -1:] if has_alpha else None
    if channels == 4:
        rgb = np.repeat(color, 3, axis=2) if color.shape[2] == 1 else color
        a = alpha if alpha is not None else np.full(rgb.shape[:2] + (1,), 255, np.uint8)
        return np.concatenate([rgb, a], axis=2)
    if channels == 1:
        bg: tuple[int, ...] = (_luma_value(background),)
        gray = color if color.shape[2] == 1 else _luma(color)
        return _flatten(gray, alpha, bg)
    rgb = np.repeat(color, 3, axis=2) if color.shape[2] == 1 else color
    return _flatten(rgb, alpha, background)


def _flatten(color: np.ndarray, alpha: np.ndarray | None, background: tuple[int, ...]) -> np.ndarray:
    if alpha is None:
        return color
    a = alpha.astype(np.uint32)
    bg = np.asarray(background, np.uint32)
    return ((color.astype(np.uint32) * a + bg * (255 - a) + 127) // 255).astype(np.uint8)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, the same weights Pillow uses for RGB -> L."""
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 299 + g * 587 + b * 114 + 500) // 1000).astype(np.uint8)[..., None]


def _luma_value(color: Color) -> int:
    r, g, b = color
    return (r * 299 + g * 587 + b * 114 + 500) // 1000


def place(images: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, str | None]:
    """Move the finished set to ``device`` if it fits comfortably; else keep it on the CPU and say so."""
    if device.type == "cpu":
        return images, None
    need = images.numel() * images.element_size()
    try:
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if need > free // 4:  # leave the rest to the models and activations
                return images, (f"The images ({need / 2**20:.0f} MB) were kept in main memory: the GPU has "
                                f"{free / 2**20:.0f} MB free. Training works but feeds batches from the CPU.")
        return images.to(device), None
    except (RuntimeError, torch.OutOfMemoryError) as e:
        return images, f"The images were kept in main memory because {device} refused them ({e})."
