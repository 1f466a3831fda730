"""A corpus of bad and odd upload files for gandemo.intake, each with the outcome it must have.

``build_corpus(folder)`` writes every file (all tiny: the 20000x20000 "images" are headers only,
the zip bomb is a few KB) and returns the :class:`Case` list. Load every ``case.path`` in one
``load_images`` call with ``corpus_options()``; each case lists what must happen to each name
it contributes: ``used``, ``ignored`` or ``skipped`` with a keyword that the reason starts with.

Content checks (colours, orientation, alpha) use the colour constants below.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 60), (40, 60, 220)
ZIP_ENTRY_LIMIT = 50
ZIP_BYTES_LIMIT = 8 * 1024 * 1024


def corpus_options() -> dict[str, object]:
    """IntakeOptions keyword arguments the expectations assume (caps small enough to test)."""
    return {"max_zip_entries": ZIP_ENTRY_LIMIT, "max_uncompressed_bytes": ZIP_BYTES_LIMIT, "device": "cpu"}


@dataclass(frozen=True)
class Outcome:
    status: str  # "used" | "skipped" | "ignored"
    reason: str = ""  # for "skipped": the keyword the reason starts with


USED = Outcome("used")
IGNORED = Outcome("ignored")


def skipped(reason: str) -> Outcome:
    return Outcome("skipped", reason)


@dataclass
class Case:
    id: str
    path: Path
    outcomes: dict[str, Outcome]  # name as load_images reports it -> what must happen
    note: str = ""
    tags: set[str] = field(default_factory=set)


# ---------------------------------------------------------------- byte-level builders


def image_bytes(image: Image.Image, fmt: str, **save_args: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save_args)
    return buf.getvalue()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def raw_png(width: int, height: int, bit_depth: int, color_type: int, idat: bytes) -> bytes:
    """A PNG assembled by hand: any header, any (even bogus) compressed data."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def png_16bit_rgb(width: int, height: int) -> bytes:
    """16 bits per channel RGB: a red ramp left to right, full-scale green, zero blue."""
    rows = bytearray()
    for _ in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            rows += struct.pack(">HHH", x * 65535 // (width - 1), 65535, 0)
    return raw_png(width, height, 16, 2, zlib.compress(bytes(rows)))


def huge_header_png(side: int = 20000) -> bytes:
    """Claims side x side pixels; the data is a handful of bytes. Never allocate it."""
    return raw_png(side, side, 8, 2, zlib.compress(b"\0" * 64))


def huge_header_jpeg(side: int = 20000) -> bytes:
    """A real 16x16 JPEG whose SOF0 frame header is patched to claim side x side."""
    data = bytearray(image_bytes(Image.new("RGB", (16, 16), RED), "JPEG"))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, side, side)
    return bytes(data)


def split_image(size: tuple[int, int], colors: list[tuple[int, int, int]], vertical: bool = True) -> Image.Image:
    """Bands of colour: left to right when ``vertical``, else top to bottom."""
    w, h = size
    a = np.zeros((h, w, 3), np.uint8)
    n = len(colors)
    for i, c in enumerate(colors):
        if vertical:
            a[:, i * w // n:(i + 1) * w // n] = c
        else:
            a[i * h // n:(i + 1) * h // n, :] = c
    return Image.fromarray(a, "RGB")


def noise_image(size: tuple[int, int], seed: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    a = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(a[..., 0] if channels == 1 else a, mode)


def zip_bytes(entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def patch_zip_headers(data: bytes, *, file_size: int | None = None, flag_bits: int | None = None) -> bytes:
    """Rewrite the first entry's local and central headers: lie about its size, or mark it encrypted."""
    out = bytearray(data)
    local = out.find(b"PK\x03\x04")
    central = out.find(b"PK\x01\x02")
    if file_size is not None:
        struct.pack_into("<I", out, local + 22, file_size)
        struct.pack_into("<I", out, central + 24, file_size)
    if flag_bits is not None:
        struct.pack_into("<H", out, local + 6, flag_bits)
        struct.pack_into("<H", out, central + 8, flag_bits)
    return bytes(out)


# ---------------------------------------------------------------- the corpus


def build_corpus(root: Path) -> list[Case]:
    root.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def file(case_id: str, name: str, data: bytes, outcome: Outcome, note: str = "", *tags: str) -> None:
        path = root / name
        path.write_bytes(data)
        cases.append(Case(case_id, path, {name: outcome}, note, set(tags)))

    def archive(case_id: str, name: str, data: bytes, outcomes: dict[str, Outcome], note: str = "") -> None:
        path = root / name
        path.write_bytes(data)
        cases.append(Case(case_id, path, outcomes, note, {"zip"}))

    good_jpeg = image_bytes(noise_image((120, 90), 1), "JPEG", quality=90)
    good_png = image_bytes(noise_image((64, 64), 2), "PNG")

    # --- broken or not images at all
    file("truncated-jpeg", "truncated.jpg", good_jpeg[: len(good_jpeg) // 2], skipped("truncated"))
    file("text-as-png", "notes_renamed.png", b"shopping list\n- eggs\n- flour\n" * 5, skipped("not an image"))
    file("text-file", "notes.txt", b"these are my cat pictures", skipped("not an image"))
    file("zero-bytes", "empty.png", b"", skipped("empty file"))
    file("corrupt-png-data", "corrupt_data.png", raw_png(32, 32, 8, 2, b"\x78\x9c" + b"\xde\xad\xbe\xef" * 50),
         skipped("corrupt"), "valid header, IDAT is not zlib data")
    file("unsupported-ico", "favicon.ico", image_bytes(Image.new("RGB", (32, 32), RED), "ICO"),
         skipped("unsupported image format"))
    file("one-pixel", "one_pixel.png", image_bytes(Image.new("RGB", (1, 1), RED), "PNG"), skipped("too small"))
    file("huge-header-png", "huge_header.png", huge_header_png(), skipped("too large"), "header claims 20000x20000")
    file("huge-header-jpeg", "huge_header.jpg", huge_header_jpeg(), skipped("too large"), "header claims 20000x20000")
    file("bomb-warning-range", "ten_thousand.png", huge_header_png(10000), skipped("too large"),
         "100 Mpx: above Pillow's warning limit, below its error limit")

    # --- odd but usable
    file("cmyk-jpeg", "cmyk.jpg", image_bytes(Image.new("CMYK", (40, 40), (255, 0, 0, 0)), "JPEG", quality=95),
         USED, "pure cyan in CMYK", "content")
    gradient16 = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    file("gray-16bit-png", "gray16.png", image_bytes(Image.fromarray(gradient16), "PNG"), USED,
         "mode I;16, a 0..65535 ramp", "content")
    file("rgb-16bit-png", "rgb16.png", png_16bit_rgb(48, 48), USED, "16 bits per channel RGB", "content")
    pal = Image.new("P", (40, 40), 1)
    pal.putpalette([0, 0, 0] + list(RED) + [0, 0, 0] * 254)
    pal.paste(0, (0, 0, 20, 40))  # left half: index 0, the transparent one
    file("palette-transparency", "palette_alpha.png", image_bytes(pal, "PNG", transparency=0), USED,
         "left half transparent", "content", "alpha")
    opaque_pal = Image.new("RGB", (40, 40), GREEN).quantize(4)
    file("palette-opaque", "palette.png", image_bytes(opaque_pal, "PNG"), USED)
    la = Image.merge("LA", (Image.new("L", (40, 40), 200), split_image((40, 40), [(0, 0, 0), (255, 255, 255)]).convert("L")))
    file("la-png", "gray_alpha.png", image_bytes(la, "PNG"), USED, "gray 200, left half transparent", "alpha")
    rgb_key = Image.new("RGB", (40, 40), BLUE)
    rgb_key.paste((0, 0, 0), (0, 0, 40, 10))
    file("rgb-colour-key", "colour_key.png", image_bytes(rgb_key, "PNG", transparency=(0, 0, 0)), USED,
         "tRNS colour key: top quarter transparent", "alpha")
    file("bilevel", "bilevel.png", image_bytes(Image.new("1", (40, 40), 1), "PNG"), USED, "mode 1")
    frames = [Image.new("RGB", (40, 40), RED), Image.new("RGB", (40, 40), BLUE)]
    file("animated-gif", "animated.gif",
         image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
         USED, "first frame red, second blue", "content")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display = rotate 90 degrees clockwise
    file("exif-rotated-jpeg", "exif_rotated.jpg",
         image_bytes(split_image((80, 40), [RED, BLUE], vertical=False), "JPEG", quality=95, exif=exif),
         USED, "stored 80x40 red-over-blue; shown 40x80 blue left, red right", "content")
    file("bmp", "picture.bmp", image_bytes(noise_image((50, 50), 3), "BMP"), USED)
    file("tiff", "picture.tif", image_bytes(noise_image((50, 50), 4), "TIFF", compression="tiff_deflate"), USED)
    webp = noise_image((50, 50), 5, "RGBA")
    file("webp-alpha", "picture.webp", image_bytes(webp, "WEBP", lossless=True), USED, "random alpha", "alpha")
    file("wide", "wide.png", image_bytes(split_image((240, 60), [RED, GREEN, BLUE]), "PNG"), USED,
         "4:1, red | green | blue", "content")
    file("tall", "tall.png", image_bytes(split_image((60, 240), [RED, GREEN, BLUE], vertical=False), "PNG"), USED,
         "1:4, red / green / blue")
    file("small-warn", "tiny.png", image_bytes(noise_image((12, 12), 6), "PNG"), USED, "warned about")
    file("large-jpeg", "large_photo.jpg", image_bytes(split_image((3000, 2000), [RED, GREEN, BLUE]), "JPEG", quality=80),
         USED, "3000x2000: decoded at reduced scale", "content")
    file("wrong-extension", "really_a_png.jpg", good_png, USED, "PNG bytes with a .jpg name")

    # --- zips
    ok = image_bytes(noise_image((40, 40), 7), "PNG")
    archive("zip-traversal", "traversal.zip", zip_bytes([("../escape.png", ok), ("a/../../escape2.png", ok),
                                                         ("traversal_ok.png", ok)]),
            {"../escape.png": skipped("unsafe path"), "a/../../escape2.png": skipped("unsafe path"),
             "traversal_ok.png": USED})
    archive("zip-absolute", "absolute.zip", zip_bytes([("/etc/evil.png", ok), ("C:/Windows/evil.png", ok),
                                                       ("absolute_ok.png", ok)]),
            {"/etc/evil.png": skipped("unsafe path"), "C:/Windows/evil.png": skipped("unsafe path"),
             "absolute_ok.png": USED})
    archive("zip-bomb", "bomb.zip", zip_bytes([("bomb_a.png", ok), ("zeros.bin", bytes(3 * ZIP_BYTES_LIMIT))]),
            {"bomb.zip": skipped("zip too large when unpacked")},
            "24 MB of zeros in a few KB; refused from the central directory's sizes")
    archive("zip-lying-size", "lying_size.zip",
            patch_zip_headers(zip_bytes([("lying.png", image_bytes(noise_image((200, 200), 8), "PNG"))]),
                              file_size=1000),
            {"lying.png": skipped("corrupt zip entry")},
            "header says 1000 bytes: reading stops there and the CRC check fails")
    archive("zip-too-many-entries", "many.zip",
            zip_bytes([(f"many_{i}.png", ok) for i in range(ZIP_ENTRY_LIMIT + 1)], zipfile.ZIP_STORED),
            {"many.zip": skipped("too many entries in zip")})
    archive("zip-nested-folders", "nested.zip",
            zip_bytes([("albums/", b""), ("albums/2023/summer/beach.png", ok), ("albums/cats/cat.jpg", good_jpeg)]),
            {"albums/2023/summer/beach.png": USED, "albums/cats/cat.jpg": USED})
    archive("zip-system-files", "from_mac.zip",
            zip_bytes([("mac/photo.png", ok), ("__MACOSX/mac/._photo.png", b"\0\5\26\7" + bytes(60)),
                       ("mac/.DS_Store", bytes(64)), ("mac/.hidden.png", ok), (".git/config.png", ok),
                       ("mac/Thumbs.db", bytes(16))]),
            {"mac/photo.png": USED, "__MACOSX/mac/._photo.png": IGNORED, "mac/.DS_Store": IGNORED,
             "mac/.hidden.png": IGNORED, ".git/config.png": IGNORED, "mac/Thumbs.db": IGNORED})
    inner = zip_bytes([("inner.png", ok)])
    archive("zip-in-zip", "outer.zip", zip_bytes([("inner.zip", inner), ("disguised.bin", inner), ("outer_ok.png", ok)]),
            {"inner.zip": skipped("zip inside a zip"), "disguised.bin": skipped("zip inside a zip"),
             "outer_ok.png": USED})
    archive("zip-corrupt", "corrupt.zip", b"PK\x03\x04" + bytes(range(256)) * 4, {"corrupt.zip": skipped("not a valid zip file")})
    whole = zip_bytes([("cut_a.png", ok), ("cut_b.png", ok)])
    archive("zip-truncated", "truncated.zip", whole[: len(whole) // 2], {"truncated.zip": skipped("not a valid zip file")})
    archive("zip-encrypted-entry", "encrypted.zip", patch_zip_headers(zip_bytes([("secret.png", ok)]), flag_bits=1),
            {"secret.png": skipped("encrypted zip entry")})
    link = zipfile.ZipInfo("link.png")
    link.external_attr = (0o120777 << 16)
    archive("zip-symlink", "symlink.zip", zip_bytes([(link, b"/etc/passwd"), ("symlink_ok.png", ok)]),
            {"link.png": skipped("symbolic link in zip"), "symlink_ok.png": USED})
    return cases


def gray_set(root: Path) -> list[Path]:
    """Grayscale pictures in several encodings (L, I;16, gray-as-RGB JPEG, opaque LA, palette)."""
    root.mkdir(parents=True, exist_ok=True)
    gray_rgb = noise_image((60, 60), 11, "L").convert("RGB")
    gray_palette = noise_image((40, 40), 12, "L").convert("P")
    files = {
        "l.png": image_bytes(noise_image((50, 50), 10, "L"), "PNG"),
        "i16.png": image_bytes(Image.fromarray((np.arange(2500).reshape(50, 50) * 26).astype(np.uint16)), "PNG"),
        "gray_rgb.jpg": image_bytes(gray_rgb, "JPEG", quality=85),
        "gray_rgb.png": image_bytes(gray_rgb, "PNG"),
        "opaque_la.png": image_bytes(Image.merge("LA", (noise_image((40, 40), 13, "L"), Image.new("L", (40, 40), 255))), "PNG"),
        "palette_gray.gif": image_bytes(gray_palette, "GIF"),
        "bilevel.png": image_bytes(Image.new("1", (40, 40), 0), "PNG"),
        "gray.webp": image_bytes(noise_image((40, 40), 14, "L"), "WEBP", quality=80),
        "gray.tif": image_bytes(noise_image((40, 40), 15, "L"), "TIFF"),
    }
    paths = []
    for name, data in files.items():
        (root / name).write_bytes(data)
        paths.append(root / name)
    return paths


def good_images(root: Path, n: int, size: tuple[int, int] = (48, 48), prefix: str = "good", fmt: str = "PNG") -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = root / f"{prefix}_{i:04d}.{fmt.lower()}"
        path.write_bytes(image_bytes(noise_image(size, 1000 + i), fmt))
        paths.append(path)
    return paths
