"""``python -m gandemo style CONTENT STYLE [STYLE ...] --out FILE``: style transfer with a progress bar.

``add_style_parser(subparsers)`` registers the sub-command, ``run_style(args)`` runs it. Bad input
raises :class:`gandemo.errors.GandemoError`, which ``gandemo.cli.main`` prints as one line and turns into
a non-zero exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from .errors import InvalidInputError
from .style.settings import StyleSettings, check_image_file, style_image_name  # no torch

OUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def add_style_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``style`` sub-command to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    d = StyleSettings()
    p = subparsers.add_parser(
        "style", help="repaint a content image in the style of one or more style images",
        description="Neural style transfer (Gatys et al.) on VGG19 features. The VGG19 ImageNet weights come "
                    "from the Hub repo timm/vgg19.tv_in1k (cached), --vgg-weights or $GANDEMO_VGG_WEIGHTS.",
    )
    p.add_argument("content", metavar="CONTENT", help="content image (PNG, JPEG, ...; transparency is composited over white)")
    p.add_argument("styles", nargs="+", metavar="STYLE", help="one or more style images")
    p.add_argument("--out", required=True, help=f"output image ({', '.join(OUT_SUFFIXES)})")
    p.add_argument("--content-weight", type=float, default=d.content_weight, help=f"default {d.content_weight}")
    p.add_argument("--style-weight", type=float, default=d.style_weight, help=f"default {d.style_weight}")
    p.add_argument("--tv-weight", type=float, default=d.tv_weight, help=f"total variation weight, default {d.tv_weight}")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps per scale, default {d.steps}")
    p.add_argument("--size", type=int, default=d.size, help=f"long side of the output in px, default {d.size}")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default=d.optimizer)
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: 1 for L-BFGS, 0.02 for Adam)")
    p.add_argument("--init", choices=("content", "noise", "style-noise"), default=d.init,
                   help="starting image (style-noise: noise in the style's colours)")
    p.add_argument("--preserve-colors", action="store_true", help="transfer luminance only; keep the content's colours")
    p.add_argument("--style-blend", default=None, metavar="W1,W2,...",
                   help="blend weights, one per style image (default: equal)")
    p.add_argument("--style-scale", type=float, default=d.style_scale,
                   help="style image size relative to the output (default 1; smaller = finer texture)")
    p.add_argument("--multiscale", action="store_true", help="coarse to fine: 256, 512, ... up to --size")
    p.add_argument("--pooling", choices=("max", "avg"), default=d.pooling)
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"), default=d.precision,
                   help="network precision (auto: bfloat16 where the hardware has it natively; $GANDEMO_PRECISION)")
    p.add_argument("--vgg-weights", default=None, metavar="PATH",
                   help="local VGG19 weights (timm model.safetensors or torchvision vgg19-*.pth)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed for the noise initialisations")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    return p


def parse_blend(text: str | None) -> tuple[float, ...] | None:
    """'1,0.5' -> (1.0, 0.5); None stays None."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise InvalidInputError(f"--style-blend takes numbers separated by commas, like 1,0.5; got '{text}'.") from None


def run_style(args: argparse.Namespace) -> int:
    """Run the ``style`` sub-command: stylise, show progress, write ``--out``. Returns the exit status."""
    out = Path(args.out)
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise InvalidInputError(f"--out must end in {', '.join(OUT_SUFFIXES)}, got '{out.name}'.")
    if not out.parent.resolve().is_dir():
        raise InvalidInputError(f"The folder for --out does not exist: {out.parent}")
    settings = StyleSettings(
        size=args.size, steps=args.steps, content_weight=args.content_weight, style_weight=args.style_weight,
        tv_weight=args.tv_weight, optimizer=args.optimizer, learning_rate=args.lr, init=args.init,
        style_blend=parse_blend(args.style_blend), style_scale=args.style_scale,
        preserve_colors=args.preserve_colors, multiscale=args.multiscale, pooling=args.pooling,
        precision=args.precision, preview_every=0, seed=args.seed, vgg_weights=args.vgg_weights,
    ).checked(n_styles=len(args.styles))  # stylize checks all this again; here it comes before torch
    check_image_file(args.content, "content image")
    for i, style in enumerate(args.styles):
        check_image_file(style, style_image_name(i, len(args.styles)))
    import torch  # after the checks above, so a typo is answered at once
    from tqdm.auto import tqdm

    from .style import stylize

    try:
        device = torch.device(args.device) if args.device else None
    except RuntimeError:
        raise InvalidInputError(f"Unknown device '{args.device}': use cpu, cuda, cuda:N or mps.") from None
    events = stylize(args.content, args.styles, settings, device=device)
    bar = None
    last = None
    try:
        for event in events:
            last = event
            if bar is None:
                bar = tqdm(total=event.total_steps, unit="step", desc="style", dynamic_ncols=True, file=sys.stderr)
            if event.step == 0:
                bar.set_description(event.message.rstrip("…."))
                continue
            bar.set_description(f"scale {event.scale + 1}/{event.num_scales}" if event.num_scales > 1 else "style")
            bar.update(event.step - bar.n)
            bar.set_postfix(loss=f"{event.total_loss:.4g}", content=f"{event.content_loss:.3g}",
                            style=f"{event.style_loss:.3g}", tv=f"{event.tv_loss:.3g}", refresh=False)
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    assert last is not None and last.image is not None
    save_atomically(last.image, out)
    print(f"wrote {out} ({last.image.width}x{last.image.height} px, {last.step} steps in {last.elapsed:.0f} s; "
          f"loss {last.total_loss:.4g}: content {last.content_loss:.3g}, style {last.style_loss:.3g}, "
          f"tv {last.tv_loss:.3g})")
    return 0


def save_atomically(image: object, out: Path) -> None:
    """Write to a temporary file beside ``out``, then rename: never a half-written image."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}-", suffix=out.suffix, dir=out.parent.resolve())
    os.close(fd)
    try:
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[out.suffix.lower()]
        extra = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
        image.save(tmp, format=fmt, **extra)  # type: ignore[attr-defined]
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
