"""``python -m gandemo lab --preset mode-collapse --steps 5000 --out lab.png``: the lab from a terminal.

``add_lab_parser(subparsers)`` registers the sub-command and ``run_lab_cli(args)`` runs it. The
config options are generated from :data:`gandemo.lab.lab.FIELD_RULES`, so the CLI accepts exactly
what the lab validates. Bad input raises :class:`gandemo.errors.GandemoError`, which
``gandemo.cli.main`` prints as one line with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError
from .config import FIELD_RULES, MAX_FRAMES, MAX_STEPS, LabConfig, check_run_length
from .presets import PRESETS, preset_config

if TYPE_CHECKING:
    from .lab import Lab

IMAGE_SUFFIXES = (".png", ".gif", ".webp")
SKETCH_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


def add_lab_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``lab`` sub-command to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    p = subparsers.add_parser(
        "lab", help="train the 2D teaching GAN (a preset scenario or your settings) and draw it",
        description="The lesson lab: a small GAN on 2D toy data. Writes the final frame (PNG) or an animation "
                    "(GIF/WebP with --frames) and/or prints the final metrics as JSON.",
    )
    p.add_argument("--preset", default="default", help=f"scenario: {', '.join(PRESETS)} (default: default)")
    p.add_argument("--cure", action="store_true", help="apply the preset's cure from the start")
    p.add_argument("--cure-at", type=int, default=None, metavar="STEP",
                   help="apply the preset's cure at this step instead (only for cures that work live, e.g. lowering the lr)")
    p.add_argument("--steps", type=int, default=2000, help=f"training steps, at most {MAX_STEPS} (default 2000)")
    p.add_argument("--out", default=None, help="output image: .png (final frame), .gif or .webp (animation, with --frames)")
    p.add_argument("--frames", type=int, default=0, help=f"frames of the animation, at most {MAX_FRAMES}")
    p.add_argument("--fps", type=float, default=12.0, help="animation speed (default 12)")
    p.add_argument("--size", type=int, default=480, help="side of the 2D view in px (default 480)")
    p.add_argument("--no-plots", action="store_true", help="draw the 2D view only")
    p.add_argument("--json", action="store_true", help="print the final metrics as one JSON object on stdout")
    p.add_argument("--points", default=None, metavar="FILE",
                   help="custom data: a text file of x,y lines, or a drawing (dark strokes on a light canvas)")
    options = p.add_argument_group("settings (override the preset)")
    for name, rule in FIELD_RULES.items():
        flag = "--" + name.replace("_", "-")
        if rule.kind is bool:
            options.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=rule.help)
        elif rule.choices is not None:
            options.add_argument(flag, choices=rule.choices, default=None, help=rule.help)
        else:
            options.add_argument(flag, type=rule.kind, default=None, help=f"{rule.help} ({rule.lo:g} to {rule.hi:g})")
    return p


def _custom_points(path_text: str) -> list[list[float]]:
    from PIL import Image, UnidentifiedImageError

    from .data import points_from_sketch, points_from_text

    path = Path(path_text)
    if not path.is_file():
        raise InvalidInputError(f"--points: no such file: {path}")
    if path.suffix.lower() in SKETCH_SUFFIXES:
        try:
            with Image.open(path) as image:
                return points_from_sketch(image).tolist()
        except UnidentifiedImageError as e:
            raise InvalidInputError(f"--points: {path.name} is not a readable image.") from e
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"--points: {path.name} is neither an image nor a UTF-8 text file.") from e
    return points_from_text(text).tolist()


def build_config(args: argparse.Namespace) -> LabConfig:
    """The preset's config (with its cure if --cure), then the explicit overrides."""
    if args.preset not in PRESETS:
        raise InvalidInputError(f"Unknown preset '{args.preset}'; choose one of: {', '.join(PRESETS)}.")
    config = preset_config(args.preset, cure=args.cure)
    overrides: dict[str, Any] = {name: getattr(args, name) for name in FIELD_RULES if getattr(args, name) is not None}
    if args.points is not None:
        overrides["custom_points"] = _custom_points(args.points)
        overrides.setdefault("dataset", "custom")
    return config.replace(**overrides).validate()


def run_lab_cli(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    if out is not None:
        if out.suffix.lower() not in IMAGE_SUFFIXES:
            raise InvalidInputError(f"--out must end in {', '.join(IMAGE_SUFFIXES)}, got '{out.name}'.")
        if not out.parent.exists():
            raise InvalidInputError(f"The folder for --out does not exist: {out.parent}")
        animated = out.suffix.lower() in (".gif", ".webp")
        if animated and args.frames < 1:
            raise InvalidInputError("An animation (.gif or .webp) needs --frames N (at least 1).")
        if not animated and args.frames:
            raise InvalidInputError("--frames needs an animated --out (.gif or .webp); a .png holds the final frame.")
    if args.cure and args.cure_at is not None:
        raise InvalidInputError("Use either --cure (from the start) or --cure-at STEP, not both.")
    config = build_config(args)
    on_step = None
    if args.cure_at is not None:
        preset = PRESETS[args.preset]
        if not preset.cure_is_live:
            raise InvalidInputError(
                f"The cure of '{args.preset}' changes the networks or the data, so it can't start mid-run; use --cure."
            )
        if not 0 <= args.cure_at <= args.steps:
            raise InvalidInputError(f"--cure-at must be between 0 and --steps ({args.steps}), got {args.cure_at}.")

        def on_step(lab: Lab) -> None:
            if lab.step == args.cure_at:
                lab.update_config(**preset.cure)

    frames = args.frames if out is not None else 0
    check_run_length(args.steps, frames)  # all the input is checked before torch is imported
    from .runner import run_lab

    progress = _progress(args.steps, on_step, quiet=args.json)
    result = run_lab(config, args.steps, frames=frames, size=args.size,
                     on_step=progress, plots=not args.no_plots)
    if out is not None:
        if result.frames:
            from ..images import save_animation

            save_animation(result.frames, out, fps=args.fps)
        else:
            result.image.save(out)
    summary = {**result.metrics, "seed": config.seed, "preset": args.preset,
               "cure": bool(args.cure or args.cure_at is not None), "cure_at": args.cure_at, "dataset": config.dataset}
    if args.json:
        print(json.dumps(summary))
    else:
        covered = f"{summary['modes_covered']}/{summary['modes_total']} modes, " if summary["modes_total"] else ""
        print(f"{summary['steps']} steps: {covered}density distance {summary['density_distance']:.3f}, "
              f"D(x) {summary['d_real']:.2f}, D(G(z)) {summary['d_fake']:.2f}" + (f" -> {out}" if out else ""))
    return 0


def _progress(total: int, inner: Any, quiet: bool) -> Any:
    """Wrap ``inner`` (the per-step hook) with a tqdm bar on stderr, unless quiet or not a terminal."""
    if quiet or not sys.stderr.isatty():
        return inner
    from tqdm import tqdm

    bar = tqdm(total=total, unit="step", leave=False)

    def hook(lab: Lab) -> None:
        if inner is not None:
            inner(lab)
        bar.update(1)
        if lab.step == total:
            bar.close()

    return hook
