"""Render Noto Color Emoji glyphs into small square RGBA PNGs: a training set with real transparency.

    python scripts/render_emoji.py OUT_DIR [--size 64] [--font PATH] [--limit N] [--flags]

The font (Debian package ``fonts-noto-color-emoji``) is a CBDT bitmap font with one strike,
109 px, so it is loaded at exactly that size and drawn with ``embedded_color=True``. Each glyph
is cropped to its visible pixels, padded to a square with transparency and reduced with LANCZOS
on premultiplied alpha (so edges don't pick up the dark colour of transparent pixels).
Code points come from the font's own cmap (fontTools if installed, else a small reader here,
else Unicode's emoji blocks); the ones that draw nothing, or draw the font's "missing" glyph,
are skipped. ``--flags`` adds country flags (pairs of regional indicators; needs Pillow with
libraqm for the ligature).

Licence of the font: SIL Open Font License 1.1, Copyright 2013-2017 Google Inc.
(/usr/share/doc/fonts-noto-color-emoji/copyright). Keep that notice next to anything shipped
that contains rendered glyphs.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, features

FONT_PATH = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
STRIKE_SIZE = 109  # the only bitmap size in NotoColorEmoji.ttf; other sizes raise "invalid pixel size"
ISO_3166 = Path("/usr/share/iso-codes/json/iso_3166-1.json")

# Code points that are parts of sequences or text symbols rather than pictures on their own.
NOT_PICTURES = (
    (0x0000, 0x00A8),  # ASCII digits, '#', '*' (keycap bases), spaces
    (0x200C, 0x200D),  # zero-width (non-)joiner
    (0x20E3, 0x20E3),  # combining enclosing keycap
    (0xFE00, 0xFE0F),  # variation selectors
    (0x1F1E6, 0x1F1FF),  # regional indicator letters (flags are pairs of them)
    (0x1F3FB, 0x1F3FF),  # skin-tone modifiers
    (0xE0000, 0xE007F),  # tag characters (subdivision flags)
    (0xE000, 0xF8FF), (0xF0000, 0x10FFFF),  # private use
)
EMOJI_BLOCKS = (  # fallback when the cmap can't be read
    (0x00A9, 0x00AE), (0x203C, 0x2049), (0x2122, 0x2139), (0x2194, 0x21AA), (0x231A, 0x23FF),
    (0x24C2, 0x24C2), (0x25AA, 0x27BF), (0x2934, 0x2935), (0x2B05, 0x2B55), (0x3030, 0x303D),
    (0x3297, 0x3299), (0x1F000, 0x1FAFF),
)


def load_font(path: str | Path = FONT_PATH) -> ImageFont.FreeTypeFont:
    engine = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(path), size=STRIKE_SIZE, layout_engine=engine)


def font_codepoints(path: str | Path = FONT_PATH) -> list[int]:
    """Every code point the font maps to a glyph, in order."""
    try:
        from fontTools.ttLib import TTFont  # optional

        return sorted(TTFont(str(path), lazy=True).getBestCmap())
    except ImportError:
        pass
    try:
        return sorted(_read_cmap(Path(path).read_bytes()))
    except (ValueError, struct.error):
        return [cp for lo, hi in EMOJI_BLOCKS for cp in range(lo, hi + 1)]


def _read_cmap(font: bytes) -> set[int]:
    """The Unicode code points of a TrueType cmap (formats 4 and 12): enough for this font."""
    num_tables = struct.unpack_from(">H", font, 4)[0]
    tables = {font[12 + 16 * i: 16 + 16 * i]: struct.unpack_from(">I", font, 20 + 16 * i)[0] for i in range(num_tables)}
    if b"cmap" not in tables:
        raise ValueError("no cmap table")
    cmap = tables[b"cmap"]
    codepoints: set[int] = set()
    for i in range(struct.unpack_from(">H", font, cmap + 2)[0]):
        platform, _encoding, offset = struct.unpack_from(">HHI", font, cmap + 4 + 8 * i)
        if platform not in (0, 3):
            continue
        sub = cmap + offset
        fmt = struct.unpack_from(">H", font, sub)[0]
        if fmt == 12:
            for g in range(struct.unpack_from(">I", font, sub + 12)[0]):
                start, end, _glyph = struct.unpack_from(">III", font, sub + 16 + 12 * g)
                codepoints.update(range(start, end + 1))
        elif fmt == 4:
            segments = struct.unpack_from(">H", font, sub + 6)[0] // 2
            ends = struct.unpack_from(f">{segments}H", font, sub + 14)
            starts = struct.unpack_from(f">{segments}H", font, sub + 16 + 2 * segments)
            codepoints.update(cp for s, e in zip(starts, ends, strict=True) for cp in range(s, e + 1) if cp != 0xFFFF)
    if not codepoints:
        raise ValueError("no Unicode cmap subtable")
    return codepoints


def is_picture(cp: int) -> bool:
    return not any(lo <= cp <= hi for lo, hi in NOT_PICTURES)


def draw_glyphs(text: str, font: ImageFont.FreeTypeFont) -> Image.Image | None:
    """``text`` drawn at the font's native size on transparency, cropped to its visible pixels."""
    left, top, right, bottom = font.getbbox(text)
    if right <= left or bottom <= top:
        return None
    canvas = Image.new("RGBA", (right - left + 8, bottom - top + 8), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((4 - left, 4 - top), text, font=font, embedded_color=True)
    box = canvas.getchannel("A").getbbox()
    return canvas.crop(box) if box else None


def to_square(image: Image.Image, size: int) -> Image.Image:
    """Pad to a centred square with transparency, then LANCZOS on premultiplied alpha."""
    side = max(image.size)
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return square.convert("RGBa").resize((size, size), Image.Resampling.LANCZOS).convert("RGBA")


class EmojiRenderer:
    """Renders single emoji; knows what the font's "missing glyph" looks like so it can skip it."""

    def __init__(self, font_path: str | Path = FONT_PATH, size: int = 64) -> None:
        self.font = load_font(font_path)
        self.size = size
        missing = draw_glyphs(chr(0x10FFFD), self.font)  # a private-use code point no font maps
        self._missing = missing.tobytes() if missing is not None else None
        single = draw_glyphs("\U0001F600", self.font)
        self._single_width = single.width if single is not None else STRIKE_SIZE

    def render(self, text: str) -> Image.Image | None:
        glyphs = draw_glyphs(text, self.font)
        if glyphs is None or (self._missing is not None and glyphs.tobytes() == self._missing):
            return None
        if len(text) > 1 and glyphs.width > 1.5 * self._single_width:
            return None  # the sequence did not join into one picture (no ligature in the font)
        return to_square(glyphs, self.size)


def file_name(text: str) -> str:
    """Noto's own naming: ``emoji_u1f600.png``, ``emoji_u1f1fa_1f1f8.png``."""
    return "emoji_u" + "_".join(f"{ord(c):04x}" for c in text) + ".png"


def country_flags() -> list[str]:
    if ISO_3166.exists():
        codes = [entry["alpha_2"] for entry in json.loads(ISO_3166.read_text())["3166-1"]]
    else:
        codes = [a + b for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    return ["".join(chr(0x1F1E6 + ord(ch) - ord("A")) for ch in code) for code in codes]


def render_all(out_dir: str | Path, texts: Iterable[str], renderer: EmojiRenderer, limit: int | None = None) -> int:
    """Write one PNG per text that renders to something; returns how many were written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for text in texts:
        if limit is not None and written >= limit:
            break
        image = renderer.render(text)
        if image is not None:
            image.save(out / file_name(text))
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--size", type=int, default=64, help="side of the square PNGs (default 64)")
    parser.add_argument("--font", type=Path, default=FONT_PATH)
    parser.add_argument("--limit", type=int, default=None, help="stop after this many emoji")
    parser.add_argument("--flags", action="store_true", help="add country flags (needs libraqm)")
    args = parser.parse_args(argv)
    if not args.font.exists():
        print(f"font not found: {args.font} (Debian: apt install fonts-noto-color-emoji)", file=sys.stderr)
        return 1
    renderer = EmojiRenderer(args.font, args.size)
    texts = [chr(cp) for cp in font_codepoints(args.font) if is_picture(cp)]
    if args.flags:
        if features.check("raqm"):
            texts += country_flags()
        else:
            print("--flags needs Pillow built with libraqm; flags skipped", file=sys.stderr)
    count = render_all(args.out_dir, texts, renderer, args.limit)
    print(f"wrote {count} emoji to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
