"""One picture of the lab, for the UI's live view and the CLI's PNG/GIF alike.

Left: the plane. D's opinion as the background (green where D says "real", purple where it
says "fake", pale where it can't tell, as in GAN Lab), the real points, the generated points,
arrows showing where G's loss pushes some generated points, and the image under G of a regular
grid of noise (its folds show where G piles noise onto a few places). Right (``plots=True``):
small line plots of the losses, of D(x) and D(G(z)), and of coverage over the steps, with a
dashed orange line wherever the learning rate was changed.

Speed matters (the UI redraws several times a second on 2 CPU cores): D is evaluated on a
48x48 grid and upscaled bilinearly, a few hundred points are drawn, and only PIL + numpy +
torch are used. ``benchmarks/lab_presets.py`` measures the time per frame.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .data import VIEW
from .lab import Lab
from .nets import g_loss_per_sample, real_score

LAYERS = frozenset({"heatmap", "real", "fake", "arrows", "manifold"})
DEFAULT_LABELS = {
    "real": "real data", "fake": "generated", "arrows": "G's push", "manifold": "G(noise grid)",
    "d_says_real": "D: real", "d_says_fake": "D: fake",
    "losses": "losses", "loss_d": "D", "loss_g": "G",
    "d_outputs": "D's output", "d_real": "D(x)", "d_fake": "D(G(z))",
    "coverage": "modes covered", "density": "density distance", "step": "step", "lr_change": "lr changed",
}
HEAT_GRID = 48
DRAWN_POINTS = 300
ARROWS = 40
ARROW_PX = 28  # longest arrow; length = ARROW_PX * tanh(|gradient|), so a vanishing gradient shows as none
REAL_COLOUR, FAKE_COLOUR = (16, 110, 56), (112, 38, 160)
LINE_COLOURS = {"loss_d": (16, 110, 56), "loss_g": (112, 38, 160), "d_real": (16, 110, 56),
                "d_fake": (112, 38, 160), "coverage": (30, 90, 180), "density": (30, 90, 180)}
LR_COLOUR = (235, 130, 20)
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _draws_diacritics(candidate: ImageFont.FreeTypeFont) -> bool:
    # Pillow's bundled font (Aileron) has no Vietnamese letters: it draws one missing-glyph box
    # for "ộ", "ằ", "ệ" alike.
    def ink(text: str) -> bytes:
        image = Image.new("L", (4 * candidate.size, 2 * candidate.size))
        ImageDraw.Draw(image).text((0, 0), text, fill=255, font=candidate)
        return image.tobytes()

    return len({ink("ộ"), ink("ằ"), ink("o")}) == 3


@functools.lru_cache(maxsize=8)
def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """A font that draws Vietnamese diacritics: Pillow's bundled FreeType font
    (``load_default(size=)``) if it has them, else DejaVu Sans, else whatever Pillow has."""
    loaded: ImageFont.ImageFont | ImageFont.FreeTypeFont | None = None
    try:
        loaded = ImageFont.load_default(size=size)
        if isinstance(loaded, ImageFont.FreeTypeFont) and _draws_diacritics(loaded):
            return loaded
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType
        pass
    if _DEJAVU.exists():
        return ImageFont.truetype(str(_DEJAVU), size)
    return loaded or ImageFont.load_default()


def _heat_lut() -> np.ndarray:
    """256 colours from purple (D(x)=0, "fake") through near-white (0.5) to green (1, "real")."""
    stops = np.array([[196, 160, 224], [246, 246, 246], [160, 214, 170]], np.float32)
    t = np.linspace(0, 2, 256)
    lo = np.minimum(t.astype(int), 1)
    frac = (t - lo)[:, None]
    return (stops[lo] * (1 - frac) + stops[lo + 1] * frac).round().astype(np.uint8)


_LUT = _heat_lut()


def _to_px(points: torch.Tensor | np.ndarray, size: int) -> np.ndarray:
    """Plane coordinates -> pixel coordinates (y up on the plane, down in the image)."""
    p = np.asarray(points, dtype=np.float32)
    scale = size / (2 * VIEW)
    return np.stack([(p[:, 0] + VIEW) * scale, (VIEW - p[:, 1]) * scale], 1)


@torch.no_grad()
def _heatmap(lab: Lab, size: int) -> Image.Image:
    ticks = (torch.arange(HEAT_GRID, dtype=torch.float32) + 0.5) / HEAT_GRID * 2 * VIEW - VIEW
    ys, xs = torch.meshgrid(-ticks, ticks, indexing="ij")  # first image row = top of the plane
    grid = torch.stack([xs.flatten(), ys.flatten()], 1)
    # With minibatch discrimination D also reads a batch's spread: draw what D thinks of each
    # place when it sits in a batch that is as spread out as the real data.
    spread = lab.D.batch_spread(lab.real_reference) if lab.D.minibatch_std else None
    score = real_score(lab.D(grid, spread), lab.config.loss).reshape(HEAT_GRID, HEAT_GRID)
    rgb = _LUT[(score.numpy() * 255).round().astype(np.uint8)]
    return Image.fromarray(rgb, "RGB").resize((size, size), Image.Resampling.BILINEAR)


def _dots(draw: ImageDraw.ImageDraw, px: np.ndarray, colour: tuple[int, int, int], radius: float) -> None:
    for x, y in px:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)


def _arrows(lab: Lab, fake: torch.Tensor, draw: ImageDraw.ImageDraw, size: int) -> None:
    x = fake.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = g_loss_per_sample(lab.D(x), lab.config.loss).sum()
        (grad,) = torch.autograd.grad(loss, x)
    push = -grad[:ARROWS]  # where G's loss wants each point to go (the direction D calls "more real")
    norm = push.norm(dim=1, keepdim=True)
    length_px = ARROW_PX * torch.tanh(norm)
    direction = push / norm.clamp_min(1e-12)
    start = _to_px(fake[:ARROWS], size)
    delta = (direction * length_px).numpy() * np.array([1, -1], np.float32)
    for (sx, sy), (dx, dy) in zip(start, delta):
        if dx * dx + dy * dy < 1:
            continue
        ex, ey = sx + dx, sy + dy
        draw.line((sx, sy, ex, ey), fill=(40, 40, 40), width=1)
        angle = math.atan2(dy, dx)
        for side in (2.6, -2.6):  # two short strokes at +-150 degrees make the head
            draw.line((ex, ey, ex + 5 * math.cos(angle + side), ey + 5 * math.sin(angle + side)), fill=(40, 40, 40))


@torch.no_grad()
def _manifold(lab: Lab, draw: ImageDraw.ImageDraw, size: int) -> None:
    lines = lab.noise_grid_lines()
    mapped = _to_px(lab.G(torch.cat(lines)), size).clip(-size, 2 * size)  # one forward; PIL dislikes huge coordinates
    start = 0
    for line in lines:
        draw.line(mapped[start:start + len(line)].ravel().tolist(), fill=(70, 70, 70), width=1)
        start += len(line)


def _legend(draw: ImageDraw.ImageDraw, show: set[str], labels: dict[str, str], size: int) -> None:
    f = font(max(10, size // 40))
    line_h = max(12, size // 32)
    entries = [(k, labels[k]) for k in ("real", "fake", "manifold", "arrows") if k in show]
    if "heatmap" in show:
        entries += [("d_says_real", labels["d_says_real"]), ("d_says_fake", labels["d_says_fake"])]
    if not entries:
        return
    width = max(draw.textlength(text, font=f) for _, text in entries) + line_h + 14
    draw.rectangle((4, 4, 4 + width, 8 + line_h * len(entries)), fill=(255, 255, 255), outline=(180, 180, 180))
    for i, (key, text) in enumerate(entries):
        cx, cy = 6 + line_h / 2, 6 + line_h * i + line_h / 2
        r = line_h / 4
        if key in ("real", "fake"):
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=REAL_COLOUR if key == "real" else FAKE_COLOUR)
        elif key == "manifold":
            draw.line((cx - 2 * r, cy, cx + 2 * r, cy), fill=(70, 70, 70))
        elif key == "arrows":
            draw.line((cx - 2 * r, cy, cx + 2 * r, cy), fill=(40, 40, 40))
            draw.line((cx + 2 * r, cy, cx + r, cy - r), fill=(40, 40, 40))
            draw.line((cx + 2 * r, cy, cx + r, cy + r), fill=(40, 40, 40))
        else:
            colour = tuple(int(c) for c in _LUT[255 if key == "d_says_real" else 0])
            draw.rectangle((cx - 2 * r, cy - r, cx + 2 * r, cy + r), fill=colour, outline=(150, 150, 150))
        draw.text((6 + line_h + 6, cy), text, fill=(30, 30, 30), font=f, anchor="lm")


def _plot(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], title: str, steps: list[int],
    series: list[tuple[list[float | None], tuple[int, int, int], str]], y_range: tuple[float, float] | None,
    lr_steps: list[int], labels: dict[str, str],
) -> None:
    x0, y0, x1, y1 = box
    f = font(max(10, (y1 - y0) // 12))
    pad_l, pad_t, pad_b = 34, 16, 14
    px0, py0, px1, py1 = x0 + pad_l, y0 + pad_t, x1 - 6, y1 - pad_b
    draw.text((px0, y0 + 2), title, fill=(30, 30, 30), font=f)
    # the legend follows the title, on the left: the page puts its fullscreen and download buttons over the
    # picture's top-right corner, where the top chart's legend was hidden (right-aligned only if it can't fit)
    named = series if len(series) > 1 else []  # one series: the title says it
    widths = [draw.textlength(name, font=f) + 6 for _, _, name in named]
    legend_x = px0 + draw.textlength(title, font=f) + 10
    if legend_x + sum(widths) > px1:
        legend_x = px1 - sum(widths)
    for (_, colour, name), width in zip(named, widths, strict=True):
        draw.text((legend_x, y0 + 2), name, fill=colour, font=f)
        legend_x += width
    draw.rectangle((px0, py0, px1, py1), outline=(190, 190, 190))
    values = [v for vals, _, _ in series for v in vals if v is not None and math.isfinite(v)]
    if not steps or not values:
        return
    lo, hi = y_range if y_range is not None else (min(values), max(values))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    s0, s1 = steps[0], max(steps[-1], steps[0] + 1)

    def to_xy(step: int, v: float) -> tuple[float, float]:
        return (px0 + (step - s0) / (s1 - s0) * (px1 - px0), py1 - (min(max(v, lo), hi) - lo) / (hi - lo) * (py1 - py0))

    for step in lr_steps:
        x = to_xy(step, lo)[0]
        for y in range(py0, py1, 6):  # dashed: reads as a marker, not as data
            draw.line((x, y, x, min(y + 3, py1)), fill=LR_COLOUR)
    for vals, colour, _ in series:
        pts = [to_xy(s, v) for s, v in zip(steps, vals) if v is not None and math.isfinite(v)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=1)
    for v, anchor_y in ((hi, py0), (lo, py1)):
        draw.text((px0 - 3, anchor_y), f"{v:.3g}", fill=(90, 90, 90), font=f, anchor="rm")
    draw.text((px1, py1 + 1), f"{labels['step']} {steps[-1]}", fill=(90, 90, 90), font=f, anchor="ra")


def _plots(lab: Lab, draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], labels: dict[str, str]) -> None:
    x0, y0, x1, y1 = box
    history = lab.history
    stride = max(1, len(history) // max(1, x1 - x0))  # about one point per pixel column
    rows = history[::stride]
    if history and rows[-1] is not history[-1]:
        rows.append(history[-1])
    steps = [r["step"] for r in rows]
    lr_steps = [r["step"] for r in history if r.get("lr_changed")]
    h = (y1 - y0) // 3
    _plot(draw, (x0, y0, x1, y0 + h), labels["losses"], steps,
          [([r["loss_d"] for r in rows], LINE_COLOURS["loss_d"], labels["loss_d"]),
           ([r["loss_g"] for r in rows], LINE_COLOURS["loss_g"], labels["loss_g"])], None, lr_steps, labels)
    _plot(draw, (x0, y0 + h, x1, y0 + 2 * h), labels["d_outputs"], steps,
          [([r["d_real"] for r in rows], LINE_COLOURS["d_real"], labels["d_real"]),
           ([r["d_fake"] for r in rows], LINE_COLOURS["d_fake"], labels["d_fake"])], (0.0, 1.0), lr_steps, labels)
    measured = [r for r in history if "density_distance" in r]
    m_steps = [r["step"] for r in measured]
    if lab.data.is_mixture:
        total = float(len(lab.data.modes))
        series = [([r["modes_covered"] for r in measured], LINE_COLOURS["coverage"], labels["coverage"])]
        _plot(draw, (x0, y0 + 2 * h, x1, y1), labels["coverage"], m_steps, series, (0.0, total), lr_steps, labels)
    else:
        series = [([r["density_distance"] for r in measured], LINE_COLOURS["density"], labels["density"])]
        _plot(draw, (x0, y0 + 2 * h, x1, y1), labels["density"], m_steps, series, (0.0, 1.0), lr_steps, labels)


def frame_size(size: int = 480, plots: bool = True) -> tuple[int, int]:
    """(width, height) of :func:`render_frame`'s image: the square view plus, with plots, a
    column 5/8 of ``size`` wide."""
    return (size + (size * 5 // 8 if plots else 0), size)


def render_frame(
    lab: Lab, size: int = 480, show: set[str] | None = None, plots: bool = True, labels: dict[str, str] | None = None
) -> Image.Image:
    """Draw ``lab`` now as an RGB image of :func:`frame_size` (``size`` x ``size`` without plots).

    ``show`` picks layers from {"heatmap", "real", "fake", "arrows", "manifold"} (default: all).
    ``labels`` overrides any of the English strings, by key: real, fake, arrows, manifold,
    d_says_real, d_says_fake (legend); losses, loss_d, loss_g, d_outputs, d_real, d_fake, coverage,
    density (plot titles and series); step (x axis); lr_change (reserved for the lr marker's name).
    """
    layers = set(LAYERS if show is None else show)
    unknown = layers - LAYERS
    if unknown:
        raise ValueError(f"unknown layer(s) {sorted(unknown)}; choose from {sorted(LAYERS)}")
    text = {**DEFAULT_LABELS, **(labels or {})}
    image = Image.new("RGB", frame_size(size, plots), (255, 255, 255))
    # the plane is drawn on a picture of its own, so points, grid lines and arrows that leave the view are
    # cut off at its edge instead of being drawn over the charts beside it
    scene = _heatmap(lab, size) if "heatmap" in layers else Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(scene)
    if "manifold" in layers:
        _manifold(lab, draw, size)
    if "real" in layers:
        _dots(draw, _to_px(lab.data.points[:DRAWN_POINTS], size), REAL_COLOUR, max(1.5, size / 240))
    fake = lab.generate(lab.fixed_noise[:DRAWN_POINTS])
    if "fake" in layers:
        _dots(draw, _to_px(fake, size), FAKE_COLOUR, max(1.5, size / 240))
    if "arrows" in layers:
        _arrows(lab, fake, draw, size)
    draw.rectangle((0, 0, size - 1, size - 1), outline=(160, 160, 160))
    _legend(draw, layers, text, size)
    image.paste(scene, (0, 0))
    if plots:
        _plots(lab, ImageDraw.Draw(image), (size + 4, 0, image.width - 2, size), text)
    return image

