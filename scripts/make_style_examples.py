"""Draw the example images of the style transfer tab (examples/style/), procedurally, with Pillow and numpy.

    python scripts/make_style_examples.py [--out examples/style] [--seed 0]

Content: a house in a landscape, a harbour with a lighthouse. Style: stained glass (coloured Voronoi
cells with lead lines), brush strokes (short oriented strokes following a swirling field), waves
(layered crests in a woodblock palette). Everything is drawn from scratch here, so the images are
the project's own work, released under CC0 (see examples/style/ATTRIBUTION.md).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

W, H = 512, 384
S = 512


def vertical_gradient(w: int, h: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    t = np.linspace(0, 1, h)[:, None, None]
    rows = (1 - t) * np.array(top) + t * np.array(bottom)
    return Image.fromarray(np.repeat(rows, w, axis=1).astype(np.uint8), "RGB")


def house(rng: np.random.Generator) -> Image.Image:
    img = vertical_gradient(W, H, (120, 170, 230), (215, 230, 245))
    d = ImageDraw.Draw(img)
    d.ellipse((390, 40, 450, 100), fill=(255, 220, 120))
    for cx, cy, r in ((110, 70, 28), (150, 62, 34), (190, 72, 26), (300, 100, 20), (330, 94, 26)):
        d.ellipse((cx - r, cy - r * 0.6, cx + r, cy + r * 0.6), fill=(250, 250, 252))
    d.polygon([(0, 250), (120, 190), (260, 240), (400, 180), (512, 230), (512, 384), (0, 384)], fill=(90, 150, 80))
    d.polygon([(0, 300), (200, 260), (512, 290), (512, 384), (0, 384)], fill=(70, 125, 60))
    # the house
    d.rectangle((180, 220, 330, 320), fill=(200, 80, 60), outline=(90, 40, 30), width=3)
    d.polygon([(165, 222), (255, 160), (345, 222)], fill=(110, 60, 50), outline=(60, 30, 25))
    d.rectangle((290, 170, 310, 205), fill=(120, 70, 60))
    d.rectangle((240, 265, 272, 320), fill=(95, 60, 35))
    for x0 in (195, 290):
        d.rectangle((x0, 240, x0 + 28, 266), fill=(250, 235, 150), outline=(255, 255, 255), width=3)
        d.line((x0 + 14, 240, x0 + 14, 266), fill=(255, 255, 255), width=2)
    # a tree and a path
    d.rectangle((400, 240, 414, 310), fill=(100, 70, 40))
    d.ellipse((365, 170, 450, 260), fill=(50, 110, 50))
    d.polygon([(245, 320), (268, 320), (300, 384), (215, 384)], fill=(200, 180, 130))
    # flowers
    for _ in range(60):
        x, y = rng.integers(0, W), rng.integers(325, H)
        color = [(240, 80, 90), (250, 220, 80), (250, 250, 250)][rng.integers(0, 3)]
        d.ellipse((x - 3, y - 3, x + 3, y + 3), fill=color)
    return img.filter(ImageFilter.SMOOTH)


def harbour(rng: np.random.Generator) -> Image.Image:
    img = vertical_gradient(W, H, (250, 170, 110), (250, 225, 190))
    d = ImageDraw.Draw(img)
    d.ellipse((80, 150, 160, 230), fill=(255, 240, 200))
    sea = vertical_gradient(W, H - 220, (40, 90, 140), (20, 50, 90))
    img.paste(sea, (0, 220))
    for _ in range(120):  # glints on the water
        x, y = rng.integers(0, W), rng.integers(225, H)
        d.line((x, y, x + rng.integers(6, 20), y), fill=(250, 200, 150), width=1)
    # cliff and lighthouse
    d.polygon([(330, 230), (380, 170), (512, 160), (512, 384), (300, 384)], fill=(90, 80, 70))
    d.polygon([(415, 170), (455, 170), (448, 60), (422, 60)], fill=(245, 245, 240))
    for y in (80, 110, 140):
        d.polygon([(421 - (y - 60) * 0.05, y), (449 + (y - 60) * 0.05, y), (450 + (y - 60) * 0.05, y + 14),
                   (420 - (y - 60) * 0.05, y + 14)], fill=(200, 40, 40))
    d.rectangle((418, 40, 452, 60), fill=(60, 60, 60))
    d.polygon([(414, 40), (435, 22), (456, 40)], fill=(180, 40, 40))
    d.polygon([(452, 50), (512, 30), (512, 70)], fill=(255, 245, 170))
    # a sailing boat
    d.polygon([(140, 300), (250, 300), (230, 325), (160, 325)], fill=(120, 60, 30))
    d.polygon([(195, 296), (195, 200), (250, 296)], fill=(250, 250, 245))
    d.polygon([(190, 296), (190, 215), (150, 296)], fill=(230, 230, 220))
    d.line((193, 300, 193, 195), fill=(60, 40, 20), width=3)
    return img.filter(ImageFilter.SMOOTH)


def stained_glass(rng: np.random.Generator) -> Image.Image:
    n = 90
    points = rng.uniform(0, S, size=(n, 2))
    palette = np.array([(200, 30, 40), (30, 70, 170), (240, 190, 40), (40, 140, 70), (120, 40, 140),
                        (230, 120, 30), (60, 160, 200)], dtype=np.float64)
    colors = palette[rng.integers(0, len(palette), n)] * rng.uniform(0.75, 1.1, size=(n, 1))
    yy, xx = np.mgrid[0:S, 0:S]
    dist = (xx[..., None] - points[:, 0]) ** 2 + (yy[..., None] - points[:, 1]) ** 2
    order = np.argsort(dist, axis=-1)
    nearest, second = order[..., 0], order[..., 1]
    d1 = np.sqrt(np.take_along_axis(dist, nearest[..., None], -1)[..., 0])
    d2 = np.sqrt(np.take_along_axis(dist, second[..., None], -1)[..., 0])
    img = colors[nearest]
    # light through glass: brighter in the middle of each cell, streaks of texture
    shade = 0.8 + 0.25 * np.clip((d2 - d1) / 25, 0, 1)[..., None]
    texture = 1 + 0.06 * np.sin(xx * 0.35 + yy * 0.15)[..., None]
    img = img * shade * texture
    lead = (d2 - d1) < 3.0
    img[lead] = (25, 22, 20)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").filter(ImageFilter.SMOOTH)


def brush_strokes(rng: np.random.Generator) -> Image.Image:
    img = Image.new("RGB", (S, S), (30, 40, 90))
    d = ImageDraw.Draw(img)
    palette = [(30, 60, 150), (60, 110, 200), (240, 210, 80), (250, 240, 180), (20, 30, 80), (90, 150, 210)]
    for _ in range(5000):
        x, y = rng.uniform(0, S, 2)
        # a swirling direction field: the angle turns around two centres
        a = math.atan2(y - 180, x - 200) + math.pi / 2 + 0.6 * math.sin(x / 60) + 0.4 * math.cos(y / 45)
        length = rng.uniform(8, 22)
        dx, dy = math.cos(a) * length, math.sin(a) * length
        near_moon = (x - 380) ** 2 + (y - 120) ** 2 < 60 ** 2
        color = palette[2 if near_moon else int(rng.integers(0, len(palette)))]
        jitter = rng.integers(-20, 20, 3)
        color = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(color, jitter, strict=True))
        d.line((x - dx / 2, y - dy / 2, x + dx / 2, y + dy / 2), fill=color, width=int(rng.integers(3, 7)))
    return img.filter(ImageFilter.SMOOTH_MORE)


def waves(rng: np.random.Generator) -> Image.Image:
    img = vertical_gradient(S, S, (235, 225, 200), (225, 210, 180))
    d = ImageDraw.Draw(img)
    blues = [(20, 40, 90), (40, 80, 140), (90, 140, 190), (160, 195, 220)]
    for row in range(14):
        y0 = 40 + row * 36
        for col in range(-1, 9):
            cx = col * 64 + (row % 2) * 32 + rng.uniform(-6, 6)
            for k, color in enumerate(blues):
                r = 40 - k * 9
                d.pieslice((cx - r, y0 - r, cx + r, y0 + r), 180, 360, fill=color)
            d.arc((cx - 40, y0 - 40, cx + 40, y0 + 40), 180, 360, fill=(250, 250, 245), width=3)
            for k in range(5):  # foam fingers on the crest
                fx = cx - 30 + k * 15
                d.ellipse((fx - 4, y0 - 44, fx + 4, y0 - 36), fill=(250, 250, 245))
    return img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "examples" / "style"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    makers = {
        "content_house.jpg": house, "content_harbour.jpg": harbour,
        "style_stained_glass.jpg": stained_glass, "style_brush_strokes.jpg": brush_strokes, "style_waves.jpg": waves,
    }
    for name, make in makers.items():
        path = out / name
        make(np.random.default_rng(args.seed)).save(path, quality=85, optimize=True)
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
