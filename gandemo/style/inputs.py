"""User images in, tensors out: decoding, validation, sizes, colour spaces.

Every input becomes 8-bit RGB:

- grayscale (L, I;16, I, F) is replicated to three channels;
- transparency (RGBA, LA, palette with transparency) is composited over **white**, so a transparent
  logo looks the way image viewers show it, and no alpha reaches the network;
- CMYK, YCbCr, palette images are converted; EXIF orientation is applied.

Anything Pillow can't decode, and anything over :data:`MAX_INPUT_PIXELS` (checked from the header,
before any pixel is decoded: a decompression-bomb guard), is an :class:`InvalidInputError`.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InvalidInputError
from .settings import check_image_file

MAX_INPUT_PIXELS = 50_000_000  # about 7000 x 7000

ImageInput = Image.Image | bytes | bytearray | str | Path | np.ndarray


def load_image(source: ImageInput, what: str = "image") -> Image.Image:
    """Any supported input (PIL image, encoded bytes, a path, an HxW[xC] uint8 array) -> RGB PIL image.

    ``what`` names the input in error messages ("content image", "style image 2").
    """
    if isinstance(source, np.ndarray):
        source = _array_to_pil(source, what)
    if isinstance(source, Image.Image):
        _check_pixels(source.size, what)
        return to_rgb(source)
    if isinstance(source, bytes | bytearray):
        if not source:
            raise InvalidInputError(f"The {what} is empty (0 bytes).")
        opener, label = io.BytesIO(bytes(source)), f"The {what}"
    elif isinstance(source, str | Path):
        path = check_image_file(source, what)
        opener, label = path, f"The {what} {path.name}"
    else:
        raise InvalidInputError(f"The {what} must be an image, got {type(source).__name__}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(opener)  # reads the header only
        except Image.DecompressionBombError as e:
            pixels = next((int(w) for w in str(e).replace("(", " ").split() if w.isdigit()), 0)
            raise InvalidInputError(
                f"{label} claims {pixels / 1e6:,.0f} megapixels, far over the limit of "
                f"{MAX_INPUT_PIXELS / 1e6:.0f} megapixels; it was not decoded (a decompression-bomb guard)."
            ) from e
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise InvalidInputError(
                f"{label} is not an image that can be read (PNG, JPEG, WebP, GIF, BMP, TIFF ... expected)."
            ) from e
        _check_pixels(image.size, what)
        try:
            image.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise InvalidInputError(f"{label} is damaged or truncated and can't be decoded ({e}).") from e
    return to_rgb(image)


def _check_pixels(size: tuple[int, int], what: str) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise InvalidInputError(f"The {what} has no pixels ({w}x{h}).")
    if w * h > MAX_INPUT_PIXELS:
        raise InvalidInputError(
            f"The {what} is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels); the limit is "
            f"{MAX_INPUT_PIXELS / 1e6:.0f} megapixels. Downscale it first."
        )


def _array_to_pil(array: np.ndarray, what: str) -> Image.Image:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise InvalidInputError(f"The {what} array has shape {a.shape}; expected HxW, HxWx3 or HxWx4.")
    _check_pixels((a.shape[1], a.shape[0]), what)
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if a.size and a.max() <= 1.0:
            a = a * 255.0
        a = np.clip(np.round(a), 0, 255).astype(np.uint8)
    return Image.fromarray(a)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparency composited over white and 16-bit/float gray scaled to 8 bits."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(image, dtype=np.float64)
        lo, hi = (0.0, 65535.0) if image.mode.startswith("I;16") or a.max() > 255 else (0.0, 255.0)
        if image.mode == "F" and a.max() <= 1.0:
            hi = 1.0
        image = Image.fromarray(np.clip((a - lo) / (hi - lo) * 255.0, 0, 255).round().astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "RGBa", "La", "PA"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


# ----------------------------------------------------------------------------- sizes


def fit_long_side(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(w, h) scaled so that max(w, h) == long_side, aspect kept (each side at least 1)."""
    w, h = size
    s = long_side / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """High-quality resize (Lanczos; a box-filter pre-reduction keeps big downscales fast)."""
    if image.size == size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


# ----------------------------------------------------------------------------- tensors


def pil_to_tensor(image: Image.Image, device: torch.device | str | None = None) -> torch.Tensor:
    """RGB PIL -> float tensor (1, 3, H, W) in [0, 1]."""
    a = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous().to(device)


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> RGB PIL (values outside [0, 1] are clipped)."""
    x = x.detach()
    if x.dim() == 4:
        x = x[0]
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    a = x.float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(a), "RGB")


def resize_tensor(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of (N, C, H, W) to (w, h) = size (antialiased when shrinking)."""
    w, h = size
    if x.shape[-2:] == (h, w):
        return x
    try:
        return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    except (NotImplementedError, RuntimeError):  # some backends (older MPS) lack antialiased bicubic
        return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)


# ----------------------------------------------------------------------------- colour

# NTSC YIQ: Y is luminance, I and Q carry the chroma (Gatys et al. 2016, "Preserving color").
_RGB_TO_YIQ = torch.tensor([
    [0.299, 0.587, 0.114],
    [0.595716, -0.274453, -0.321263],
    [0.211456, -0.522591, 0.311135],
], dtype=torch.float64)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> YIQ."""
    return torch.einsum("ij,njhw->nihw", _RGB_TO_YIQ.to(x), x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) YIQ -> RGB (not clipped)."""
    return torch.einsum("ij,njhw->nihw", _YIQ_TO_RGB.to(x), x)


def luminance(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) luminance Y."""
    return rgb_to_yiq(x)[:, :1]


def match_luminance(style_y: torch.Tensor, content_y: torch.Tensor) -> torch.Tensor:
    """Shift and scale the style's luminance to the content's mean and standard deviation."""
    s_mean, s_std = style_y.mean(), style_y.std().clamp_min(1e-4)
    return ((style_y - s_mean) * (content_y.std() / s_std) + content_y.mean()).clamp(0, 1)


def with_chroma_of(y: torch.Tensor, reference_rgb: torch.Tensor) -> torch.Tensor:
    """RGB image whose luminance is ``y`` (N, 1, H, W) and whose I/Q chroma is the reference's."""
    iq = rgb_to_yiq(reference_rgb)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], dim=1))
