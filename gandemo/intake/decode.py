"""One file -> one size x size uint8 array, or :class:`Unusable` with the reason.

Order of work, cheapest checks first: identify the format from the header (only the formats
we accept), refuse pixel counts over the limit before anything is decoded (Pillow's
decompression-bomb guard stays on), ask JPEG for a reduced DCT decode (``draft``), decode,
apply the EXIF orientation, bring every colour mode to L, LA, RGB or RGBA, then crop or pad
and resize with LANCZOS (premultiplied alpha, box ``reduce`` first for big reductions).
"""

from __future__ import annotations

import contextlib
import re
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gandemo.intake.options import IntakeOptions
from gandemo.intake.reasons import Unusable

# Decoders we let look at a file (camera JPEGs that hold several pictures open as MPO via JPEG).
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "DIB", "GIF", "TIFF")
GRAY_TOLERANCE = 3  # JPEG rounding leaves gray pixels a level or two apart in R, G, B
RESAMPLE = Image.Resampling.LANCZOS
ORIENTATION_TAG = 0x0112


@dataclass
class Prepared:
    """A decoded, framed image: ``pixels`` is (size, size, k) uint8 for mode L/LA/RGB/RGBA."""

    pixels: np.ndarray
    mode: str
    gray: bool
    transparent: bool  # the image itself (not the padding) has alpha below 255 somewhere
    source_size: tuple[int, int]
    animated: bool
    decoded_pixels: int = 0  # what decoding it cost: its pixels at the size it was decoded


def prepare(fp: BinaryIO, options: IntakeOptions, allowance: int | None = None) -> Prepared:
    """Decode and frame one image; ``allowance``: the most pixels it may decode (what is left of the
    upload's budget), checked before decoding."""
    im = _open(fp, options)
    width, height = im.size
    animated = _is_animated(im)
    if im.format in ("JPEG", "MPO"):
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale while both sides stay >= 2x the target.
        im.draft(im.mode if im.mode in ("RGB", "L") else None, (2 * options.size, 2 * options.size))
    decoded = im.size[0] * im.size[1]
    if allowance is not None and decoded > allowance:
        spent = options.max_total_pixels - allowance
        raise Unusable(f"over the decoding budget: the images before it decoded {spent / 1e6:.0f} megapixels, "
                       f"this one needs {decoded / 1e6:.0f} more, the limit is {options.max_total_pixels / 1e6:.0f}")
    _load(im)
    try:
        if im.getexif().get(ORIENTATION_TAG, 1) in (5, 6, 7, 8):
            width, height = height, width
        ImageOps.exif_transpose(im, in_place=True)
    except Exception:  # a broken EXIF block only costs the orientation
        pass
    im = normalise_mode(im)
    framed, transparent = fit(im, options)
    gray = framed.mode in ("L", "LA") or _looks_gray(framed)
    pixels = np.asarray(framed)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return Prepared(pixels, framed.mode, gray, transparent, (width, height), animated, decoded)


def _open(fp: BinaryIO, options: IntakeOptions) -> Image.Image:
    head = fp.read(16)
    if not head:
        raise Unusable("empty file")
    fp.seek(0)
    with warnings.catch_warnings():
        # Above Image.MAX_IMAGE_PIXELS Pillow warns, above twice that it refuses; both mean "too large".
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(fp, formats=ACCEPTED_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            pixels = re.search(r"\((\d+) pixels\)", str(e))
            detail = f"{int(pixels.group(1)) / 1e6:.0f} megapixels" if pixels else "too many pixels"
            raise Unusable(f"too large: {detail}, the limit is {options.max_pixels / 1e6:.0f}") from None
        except UnidentifiedImageError:
            raise Unusable(_not_accepted(fp)) from None
        except Exception as e:  # any parser failure means the header is broken
            raise Unusable(f"corrupt: {_short(e)}") from None
    width, height = im.size
    if width * height > options.max_pixels:
        raise Unusable(f"too large: {width}x{height} is {width * height / 1e6:.0f} megapixels, the limit is {options.max_pixels / 1e6:.0f}")
    if min(width, height) < options.min_pixels:
        raise Unusable(f"too small: {width}x{height}")
    return im


def _not_accepted(fp: BinaryIO) -> str:
    """Tell a known-but-unsupported image format (ICO, PSD, ...) from a file that isn't an image."""
    fp.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            other = Image.open(fp)
            fmt = other.format
    except Exception:
        return "not an image"
    return f"unsupported image format: {fmt}"


def _is_animated(im: Image.Image) -> bool:
    try:
        return bool(getattr(im, "is_animated", False))
    except Exception:  # a broken second frame: the first one may still be fine
        return False
    finally:
        with contextlib.suppress(Exception):
            im.seek(0)


def _load(im: Image.Image) -> None:
    try:
        im.load()
    except MemoryError:
        raise Unusable("too large to decode") from None
    except OSError as e:
        if "truncated" in str(e):
            raise Unusable("truncated") from None
        raise Unusable(f"corrupt: {_short(e)}") from None
    except Exception as e:  # decoders raise all sorts on bad data
        raise Unusable(f"corrupt: {_short(e)}") from None


def _short(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def normalise_mode(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> L, LA, RGB or RGBA (8 bits per channel)."""
    mode = im.mode
    has_key = im.info.get("transparency") is not None
    if mode in ("L", "LA", "RGB", "RGBA") and not (has_key and mode in ("L", "RGB")):
        return im
    if mode == "P":
        return im.convert("RGBA" if has_key else "RGB")
    if mode in ("PA", "RGBa", "RGBX") or (mode == "RGB" and has_key):
        return im.convert("RGBA" if mode != "RGBX" else "RGB")
    if mode == "La" or (mode == "L" and has_key):
        return im.convert("LA")
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I") or mode == "F":
        return _deep_gray_to_l(im)
    try:
        return im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...
    except Exception:
        raise Unusable(f"unsupported colour mode: {mode}") from None


def _deep_gray_to_l(im: Image.Image) -> Image.Image:
    """16-bit and 32-bit gray -> 8-bit, keeping the full tonal range (not clipping at 255)."""
    a = np.asarray(im)
    if a.dtype.kind == "f":
        a = np.nan_to_num(a.astype(np.float64))
        if a.max(initial=0.0) <= 1.0:
            a = a * 255.0
    else:
        a = a.astype(np.int64)
        if a.max(initial=0) > 255:
            a = a / 257.0 if a.max() <= 65535 else a * (255.0 / a.max())
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def _with_alpha(mode: str) -> str:
    return {"L": "LA", "RGB": "RGBA"}.get(mode, mode)


def fit(im: Image.Image, options: IntakeOptions) -> tuple[Image.Image, bool]:
    """Centre-crop or pad to a square of ``options.size``. Returns the image and whether the
    picture itself (before padding) is transparent anywhere."""
    size = options.size
    width, height = im.size
    if options.fit == "crop":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        out = im.resize((size, size), RESAMPLE, box=(left, top, left + side, top + side), reducing_gap=3.0)
        return out, _transparent(out)
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    content = im if new_size == im.size else im.resize(new_size, RESAMPLE, reducing_gap=3.0)
    transparent = _transparent(content)
    pad = options.pad_rgb
    if pad is None:
        mode, fill = _with_alpha(content.mode), 0
    elif content.mode in ("L", "LA") and pad[0] == pad[1] == pad[2]:
        mode, fill = content.mode, (pad[0], 255) if content.mode == "LA" else pad[0]
    else:
        mode = "RGBA" if content.mode in ("LA", "RGBA") else "RGB"
        fill = (*pad, 255) if mode == "RGBA" else pad
    canvas = Image.new(mode, (size, size), fill)
    if content.mode != mode:
        content = content.convert(mode)
    canvas.paste(content, ((size - new_size[0]) // 2, (size - new_size[1]) // 2))
    return canvas, transparent


def _transparent(im: Image.Image) -> bool:
    if im.mode not in ("LA", "RGBA"):
        return False
    return im.getchannel("A").getextrema()[0] < 255


def _looks_gray(im: Image.Image) -> bool:
    a = np.asarray(im)
    rgb = a[..., :3].astype(np.int16)
    visible = a[..., 3] > 0 if im.mode == "RGBA" else np.ones(a.shape[:2], bool)
    if not visible.any():
        return True
    spread = np.maximum(np.abs(rgb[..., 0] - rgb[..., 1]), np.abs(rgb[..., 1] - rgb[..., 2]))
    return int(spread[visible].max()) <= GRAY_TOLERANCE
