"""Command line: ``python -m gandemo sample|interpolate|train|style ...``.

Errors print one line to stderr and exit with status 2 (bad input) or 1 (unexpected failure).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import GandemoError


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="fashion-mnist",
                   help="bundled name, local folder/file, or Hub repo id[@revision] (default: fashion-mnist)")
    p.add_argument("--truncation", type=float, default=None, help="truncation threshold t (resample |z| > t)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gandemo", description="GANs and style transfer from the command line.")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sample", help="write a seeded sample grid (or one image with --num 1)")
    _add_model(s)
    s.add_argument("--seed", type=int, default=0, help="first seed; image i uses seed+i")
    s.add_argument("--num", type=int, default=16, help="number of images, 1-64")
    s.add_argument("--columns", type=int, default=None, help="grid columns (default: about square)")
    s.add_argument("--scale", type=int, default=1, help="integer nearest-neighbour upscaling (default 1: native)")
    s.add_argument("--out", required=True, help="output .png")

    i = sub.add_parser("interpolate", help="write an interpolation between seeds as GIF/WebP (or a PNG frame strip)")
    _add_model(i)
    i.add_argument("--seeds", type=int, nargs="+", required=True, help="two or more seeds to pass through")
    i.add_argument("--frames", type=int, default=24, help="total frames, 2-120")
    i.add_argument("--method", choices=("slerp", "lerp"), default="slerp")
    i.add_argument("--loop", action="store_true", help="return to the first seed (seamless loop)")
    i.add_argument("--fps", type=float, default=12.0)
    i.add_argument("--scale", type=int, default=1, help="integer upscaling of each frame")
    i.add_argument("--out", required=True, help="output .gif, .webp, or .png (frame strip)")

    t = sub.add_parser("train", help="train a DCGAN on a folder or .zip of images")
    t.add_argument("data", nargs="+", help="a folder, a .zip, or image files")
    t.add_argument("--out", default=None, help="run folder (default: runs/<name>-<time>)")
    t.add_argument("--resume", default=None, help="continue a run folder written by an earlier 'train'")
    t.add_argument("--size", type=int, choices=(32, 64, 128), default=64, help="resolution (default 64)")
    length = t.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=2000, help="training length in steps (default 2000)")
    length.add_argument("--epochs", type=float, default=None,
                        help="training length in passes over the usable images, instead of --steps")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--width", type=int, default=64, help="network width of G and D")
    t.add_argument("--lr-g", type=float, default=2e-4)
    t.add_argument("--lr-d", type=float, default=2e-4)
    t.add_argument("--beta1", type=float, default=0.5)
    t.add_argument("--beta2", type=float, default=0.999)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--loss", choices=("bce", "hinge"), default="bce")
    t.add_argument("--diffaugment", default="color,translation,cutout", help="comma list; '' turns it off")
    t.add_argument("--mirror", action="store_true",
                   help="random horizontal flips of real images (only for subjects without a left and right)")
    t.add_argument("--label-smoothing", type=float, default=0.9, help="real label for D (1 = off)")
    t.add_argument("--no-spectral-norm", action="store_true")
    t.add_argument("--d-skip-threshold", type=float, default=0.05, help="skip D while its loss is below (0 = off)")
    t.add_argument("--ema", type=float, default=0.999, help="EMA decay of G (0 = off)")
    t.add_argument("--r1", type=float, default=0.0, help="R1 penalty gamma (0 = off)")
    t.add_argument("--preview-every", type=int, default=100,
                   help="save a sample grid to <run>/previews/ every N steps (default 100; 0: only at the end)")
    t.add_argument("--checkpoint-every", type=int, default=500,
                   help="save a resumable checkpoint every N steps (default 500; 0: only by time, at the end and on Ctrl-C)")
    t.add_argument("--checkpoint-minutes", type=float, default=5.0,
                   help="also save one when this many minutes have passed since the last (default 5; 0 = off)")
    t.add_argument("--fit", choices=("crop", "pad"), default="crop", help="non-square images")
    t.add_argument("--alpha", choices=("keep", "flatten"), default="keep", help="transparency")
    t.add_argument("--channels", choices=("auto", "1", "3", "4"), default="auto")
    t.add_argument("--device", default=None)

    try:
        from .style_cli import add_style_parser
    except ImportError:  # style transfer not installed in this build
        pass
    else:
        add_style_parser(sub)

    from .lab.cli import add_lab_parser

    add_lab_parser(sub)
    return parser


def _load(args: argparse.Namespace):  # noqa: ANN202 - returns gandemo.Generator
    from .generator import load_generator

    return load_generator(args.model, device=args.device)


def _check_out(path: str, suffixes: tuple[str, ...]) -> Path:
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise GandemoError(f"--out must end in {' or '.join(suffixes)}, got '{out.name}'.")
    if not out.parent.exists():
        raise GandemoError(f"The folder for --out does not exist: {out.parent}")
    return out


def run_sample(args: argparse.Namespace) -> int:
    from .explore import sample_grid
    from .images import to_pil_list, upscale

    out = _check_out(args.out, (".png",))
    if not 1 <= args.scale <= 32:
        raise GandemoError(f"--scale must be between 1 and 32, got {args.scale}.")
    gen = _load(args)
    result = sample_grid(gen, args.seed, args.num, args.truncation, args.columns)
    image = to_pil_list(result.images)[0] if args.num == 1 else result.grid
    upscale(image, args.scale).save(out)
    print(f"wrote {out} ({len(result.seeds)} image(s), seeds {result.seeds[0]}-{result.seeds[-1]}, "
          f"{image.width * args.scale}x{image.height * args.scale} px)")
    return 0


def run_interpolate(args: argparse.Namespace) -> int:
    from .explore import frame_strip, interpolation_frames, write_animation
    from .images import upscale

    out = _check_out(args.out, (".gif", ".webp", ".png"))
    if not 1 <= args.scale <= 32:
        raise GandemoError(f"--scale must be between 1 and 32, got {args.scale}.")
    if not 0.1 <= args.fps <= 60:
        raise GandemoError(f"--fps must be between 0.1 and 60, got {args.fps}.")
    gen = _load(args)
    frames = interpolation_frames(gen, args.seeds, args.frames, args.method, args.loop, args.truncation)
    if out.suffix.lower() == ".png":
        upscale(frame_strip(frames), args.scale).save(out)
    else:
        write_animation(frames, out, fps=args.fps, scale=args.scale)
    print(f"wrote {out} ({len(frames)} frames, {args.method}, seeds {' -> '.join(map(str, args.seeds))}"
          f"{' -> ' + str(args.seeds[0]) if args.loop else ''})")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .gan.runs import RunFolder, why
    from .gan.train import TrainConfig
    from .intake import IntakeOptions
    from .training import prepare_trainer

    config = TrainConfig(
        image_size=args.size, steps=args.steps, batch_size=args.batch_size, width_g=args.width, width_d=args.width,
        lr_g=args.lr_g, lr_d=args.lr_d, beta1=args.beta1, beta2=args.beta2, seed=args.seed, loss=args.loss,
        diffaugment=args.diffaugment, mirror=args.mirror, label_smoothing=args.label_smoothing,
        spectral_norm=not args.no_spectral_norm, d_skip_threshold=args.d_skip_threshold, ema_decay=args.ema,
        r1_gamma=args.r1, preview_every=args.preview_every, checkpoint_every=args.checkpoint_every,
        checkpoint_minutes=args.checkpoint_minutes,
    ).validate()
    channels = args.channels if args.channels == "auto" else int(args.channels)
    intake = IntakeOptions(size=args.size, fit=args.fit, alpha=args.alpha, channels=channels)
    sources = args.data[0] if len(args.data) == 1 else args.data
    trainer, summary = prepare_trainer(sources if isinstance(sources, list) else [sources], config, out_dir=args.out,
                                       intake=intake, resume=args.resume, device=args.device, epochs=args.epochs)
    print(summary)
    print(f"training on {trainer.device}; writing {trainer.out_dir}")
    bar = tqdm(total=trainer.config.steps, initial=trainer.step, unit="step", dynamic_ncols=True)
    last = trainer.step
    try:
        for event in trainer.train():
            bar.update(event.step - last)
            last = event.step
            if event.losses:
                bar.set_postfix(loss_d=f"{event.losses['loss_d']:.3f}", loss_g=f"{event.losses['loss_g']:.3f}",
                                Dx=f"{event.losses['d_real']:.2f}", DGz=f"{event.losses['d_fake']:.2f}",
                                img_s=f"{event.images_per_s:.0f}")
            for h in event.health:
                bar.write(f"[{h.level}] step {event.step}: {h.text}")
            if event.preview is not None:  # inside the run folder: saves carry previews/ over
                path = RunFolder(trainer.out_dir).preview_path(event.step)
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    event.preview.save(path)
                except OSError as e:  # a preview is not worth stopping for; a checkpoint that fails says so
                    bar.write(f"[warning] step {event.step}: could not write {path} ({why(e)})")
            if event.kind in ("checkpoint", "done", "stopped"):
                bar.write(f"{event.message} -> {event.checkpoint}")
    except KeyboardInterrupt:
        bar.close()
        path = trainer.save()
        print(f"interrupted at step {trainer.step}; checkpoint saved to {path} (continue with --resume {path})", file=sys.stderr)
        return 130
    bar.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"sample": run_sample, "interpolate": run_interpolate, "train": run_train}
    if args.command == "style":
        from .style_cli import run_style

        handlers["style"] = run_style
    if args.command == "lab":
        from .lab.cli import run_lab_cli

        handlers["lab"] = run_lab_cli
    try:
        return handlers[args.command](args)
    except GandemoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one line, not a traceback, for the person at the terminal
        print(f"error: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return 1
