"""What the user chose for their training images: size, channels, transparency, framing, limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageColor

from gandemo.errors import InvalidInputError

Color = tuple[int, int, int]
ColorLike = str | tuple[int, int, int]

SIZES = (32, 64, 128)


def parse_color(value: ColorLike, what: str = "colour") -> Color:
    """``"white"``, ``"#ff8800"`` or ``(255, 136, 0)`` -> an (r, g, b) tuple."""
    if isinstance(value, str):
        try:
            rgb = ImageColor.getrgb(value)
        except ValueError:
            raise InvalidInputError(f"The {what} {value!r} is not a colour (use a name like 'white' or '#rrggbb').") from None
        return (rgb[0], rgb[1], rgb[2])
    if len(value) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in value):
        raise InvalidInputError(f"The {what} must be three integers between 0 and 255, got {value!r}.")
    return (value[0], value[1], value[2])


@dataclass(frozen=True)
class IntakeOptions:
    """How uploaded images become a training set.

    size: training resolution (32, 64 or 128); every image becomes size x size.
    channels: "auto" (1 if every image is grayscale, 4 if any image has real transparency and
        ``alpha`` is "keep", else 3) or a fixed 1, 3 or 4.
    alpha: "keep" (transparency stays as a 4th channel) or "flatten" (composited on ``background``).
    background: colour that transparency is flattened onto whenever the output has no alpha.
    fit: "crop" (centre square crop) or "pad" (whole image, letterboxed to a square).
    pad_color: "transparent" or a colour for the bars that "pad" adds. Transparent bars become
        ``background`` when the output has no alpha channel.
    max_files: at most this many files are read; the rest are skipped.
    max_zip_entries, max_uncompressed_bytes: a zip over either limit is refused as a whole.
    max_file_bytes: a single file (or zip entry) larger than this is skipped.
    max_pixels: an image whose header claims more pixels is skipped without decoding
        (default: Pillow's decompression-bomb limit, which this can lower but not raise).
    max_total_pixels: the whole upload's decoding budget (0: none). Once the images read so far have
        decoded this many pixels (JPEGs count at their reduced decode size), the rest are skipped
        ("over the decoding budget"): a shared server's guard against small files that decode huge.
    min_pixels: an image whose shorter side is below this is skipped as unusable.
    min_images: fewer usable images than this is an error (0 disables the check).
    small_warn_px: warn about images whose shorter side is below this (None: half of ``size``).
    device: where the finished uint8 tensor lives ("cpu", "cuda", ...; None: gandemo's default
        device). It stays on the CPU, with a warning, if the device lacks room.
    """

    size: int = 64
    channels: Literal["auto", 1, 3, 4] = "auto"
    alpha: Literal["keep", "flatten"] = "keep"
    background: ColorLike = (255, 255, 255)
    fit: Literal["crop", "pad"] = "crop"
    pad_color: ColorLike = "transparent"
    max_files: int = 10_000
    max_zip_entries: int = 20_000
    max_uncompressed_bytes: int = 2 * 1024**3
    max_file_bytes: int = 100 * 1024**2
    max_pixels: int = Image.MAX_IMAGE_PIXELS or 89_478_485
    max_total_pixels: int = 0
    min_pixels: int = 4
    min_images: int = 8
    small_warn_px: int | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise InvalidInputError(f"The image size must be one of {', '.join(map(str, SIZES))}, got {self.size!r}.")
        if self.channels not in ("auto", 1, 3, 4):
            raise InvalidInputError(f"Channels must be 'auto', 1, 3 or 4, got {self.channels!r}.")
        if self.alpha not in ("keep", "flatten"):
            raise InvalidInputError(f"Transparency must be 'keep' or 'flatten', got {self.alpha!r}.")
        if self.channels == 4 and self.alpha == "flatten":
            raise InvalidInputError("4 channels keep transparency; choose 'keep' for transparency or 1 or 3 channels.")
        if self.fit not in ("crop", "pad"):
            raise InvalidInputError(f"Fit must be 'crop' or 'pad', got {self.fit!r}.")
        parse_color(self.background, "background colour")
        if self.pad_color != "transparent":
            parse_color(self.pad_color, "padding colour")
        for name in ("max_files", "max_zip_entries", "max_uncompressed_bytes", "max_file_bytes", "max_pixels"):
            if int(getattr(self, name)) < 1:
                raise InvalidInputError(f"{name} must be at least 1.")
        if int(self.max_total_pixels) < 0:
            raise InvalidInputError("max_total_pixels must be 0 (no budget) or more.")
        if self.min_images < 0 or self.min_pixels < 1:
            raise InvalidInputError("min_images must be >= 0 and min_pixels >= 1.")

    @property
    def background_rgb(self) -> Color:
        return parse_color(self.background, "background colour")

    @property
    def pad_rgb(self) -> Color | None:
        """The padding colour, or None for transparent padding."""
        return None if self.pad_color == "transparent" else parse_color(self.pad_color, "padding colour")

    @property
    def small_threshold(self) -> int:
        return self.small_warn_px if self.small_warn_px is not None else self.size // 2
