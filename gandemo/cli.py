"""Command line: ``python -m gandemo sample|interpolate|train|style ...``.

Errors print one line to stderr and exit with status 2 (bad input) or 1 (unexpected failure).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .errors import GandemoError
from .gan.settings import TrainConfig, check_epochs, settings_table  # no torch: the parser and the checks
from .hub import path_exists, source_kind
from .limits import check_count, check_interpolation, check_seed, check_truncation


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="fashion-mnist",
                   help="bundled name, local folder/file, or Hub repo id[@revision] (default: fashion-mnist)")
    p.add_argument("--truncation", type=float, default=None, help="truncation threshold t (resample |z| > t)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")


def add_config_options(parser: argparse.ArgumentParser, config_class: type | None = None,
                       groups: dict[str, Any] | None = None) -> None:
    """One option per field of TrainConfig (or ``config_class``), built from its Rule: ``--lr-g`` for
    ``lr_g``, its type, default, help and choices; ``--x/--no-x`` for a switch; the Rule's older
    spellings (``--size``, ``--ema``, ``--r1``) too. ``groups`` puts an option into a group (e.g. a
    mutually exclusive one). ``channels`` also takes 'auto' (its default here): as the images have them."""
    config_class = config_class or TrainConfig
    defaults = config_class()
    for name, (kind, rule) in settings_table(config_class).items():
        target = (groups or {}).get(name, parser)
        flags = [f"--{name.replace('_', '-')}", *rule.flags]
        default = getattr(defaults, name)
        shown = "'' (off)" if default == "" else default
        help_text = f"{rule.help} (default: {shown})"
        if name == "channels":
            target.add_argument(*flags, dest=name, choices=("auto", *map(str, rule.choices)), default="auto",
                                help=rule.help + " (default: auto)")
        elif kind is bool:
            target.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=default,
                                help=help_text)
        elif kind in (int, float, str):
            target.add_argument(*flags, dest=name, type=kind, default=default, help=help_text,
                                choices=rule.choices or None, metavar=_metavar(name, rule))
        else:  # a list-valued setting: its Rule's parse turns one "A:B" text into one item
            target.add_argument(*flags, dest=name, type=_cli_type(rule.parse), action="append", default=None,
                                help=f"{rule.help} (default: none)", metavar=rule.metavar or None)


def _cli_type(parse: Any) -> Any:
    """argparse shows a ValueError's own sentence only when it is an ArgumentTypeError."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


def _metavar(name: str, rule: Any) -> str | None:
    return None if rule.choices else name.upper()


def config_from_args(args: argparse.Namespace, config_class: type | None = None) -> Any:
    """The TrainConfig the options of ``add_config_options`` describe (not yet validated)."""
    config_class = config_class or TrainConfig
    defaults = config_class()
    values = {}
    for name, (kind, _rule) in settings_table(config_class).items():
        value = getattr(args, name)
        if name == "channels":
            value = defaults.channels if value == "auto" else int(value)
        elif value is None and kind not in (int, float, str, bool):
            value = getattr(defaults, name)
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    if getattr(args, "width", None) is not None:
        values["width_g"] = values["width_d"] = args.width
    return config_class(**values)


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
    length = t.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, default=None,
                        help="training length in passes over the usable images, instead of --steps")
    add_config_options(t, groups={"steps": length})
    t.add_argument("--width", type=int, default=None, help="network width of G and D (sets --width-g and --width-d)")
    t.add_argument("--fit", choices=("crop", "pad"), default="crop", help="non-square images")
    t.add_argument("--alpha", choices=("keep", "flatten"), default="keep", help="transparency")
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
    out = _check_out(args.out, (".png",))
    if not 1 <= args.scale <= 32:
        raise GandemoError(f"--scale must be between 1 and 32, got {args.scale}.")
    check_seed(args.seed)  # explore checks these again; here they come before torch and the model
    check_count(args.num)
    check_truncation(args.truncation)
    source_kind(args.model)  # a missing file or a malformed repo id, before torch too
    from .explore import sample_grid  # torch: after the checks above, so a typo is answered at once
    from .images import to_pil_list, upscale

    gen = _load(args)
    result = sample_grid(gen, args.seed, args.num, args.truncation, args.columns)
    image = to_pil_list(result.images)[0] if args.num == 1 else result.grid
    upscale(image, args.scale).save(out)
    print(f"wrote {out} ({len(result.seeds)} image(s), seeds {result.seeds[0]}-{result.seeds[-1]}, "
          f"{image.width * args.scale}x{image.height * args.scale} px)")
    return 0


def run_interpolate(args: argparse.Namespace) -> int:
    out = _check_out(args.out, (".gif", ".webp", ".png"))
    if not 1 <= args.scale <= 32:
        raise GandemoError(f"--scale must be between 1 and 32, got {args.scale}.")
    if not 0.1 <= args.fps <= 60:
        raise GandemoError(f"--fps must be between 0.1 and 60, got {args.fps}.")
    check_interpolation(args.seeds, args.frames, args.method, args.loop)
    check_truncation(args.truncation)
    source_kind(args.model)
    from .explore import frame_strip, interpolation_frames, write_animation
    from .images import upscale

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
    config = config_from_args(args).validate()  # a bad setting is refused before torch is imported
    if args.epochs is not None:
        check_epochs(args.epochs)
    if not any(path_exists(Path(source)) for source in args.data):  # one that is missing among others is skipped
        raise GandemoError(f"No such file or folder: {args.data[0]}")
    from .gan import distributed

    # started by torchrun (RANK, WORLD_SIZE, LOCAL_RANK): DistributedDataParallel, NCCL on GPUs, Gloo on CPUs
    ranks = distributed.init(args.device)
    finished = False
    try:
        code = _train(args, config, ranks)
        finished = code == 0
        return code
    finally:
        distributed.teardown(finished)


def _train(args: argparse.Namespace, config: Any, ranks: Any) -> int:
    from tqdm.auto import tqdm

    from .gan.runs import RunFolder, why
    from .intake import IntakeOptions
    from .training import prepare_trainer

    channels = args.channels if args.channels == "auto" else int(args.channels)
    intake = IntakeOptions(size=config.image_size, fit=args.fit, alpha=args.alpha, channels=channels)
    sources = args.data[0] if len(args.data) == 1 else args.data
    trainer, summary = prepare_trainer(sources if isinstance(sources, list) else [sources], config, out_dir=args.out,
                                       intake=intake, resume=args.resume, device=ranks.device or args.device,
                                       epochs=args.epochs)
    say = print if ranks.is_main else _quiet  # under torchrun, rank 0 speaks and writes for all
    say(summary)
    say(f"training on {trainer.device}" + (f" and {ranks.world_size - 1} more processes ({ranks.backend})"
                                           if ranks.active else "") + f"; writing {trainer.out_dir}")
    bar = tqdm(total=trainer.config.steps, initial=trainer.step, unit="step", dynamic_ncols=True,
               disable=not ranks.is_main)
    last = trainer.step
    stop = ranks.stop_on_signals()  # torchrun: Ctrl-C/SIGTERM stop every rank at the same step
    try:
        for event in trainer.train(stop):
            bar.update(event.step - last)
            last = event.step
            if event.losses:
                bar.set_postfix(loss_d=f"{event.losses['loss_d']:.3f}", loss_g=f"{event.losses['loss_g']:.3f}",
                                Dx=f"{event.losses['d_real']:.2f}", DGz=f"{event.losses['d_fake']:.2f}",
                                img_s=f"{event.images_per_s:.0f}", **({"px": event.growing} if event.growing else {}))
            for h in event.health if ranks.is_main else ():
                bar.write(f"[{h.level}] step {event.step}: {h.text}")
            if event.preview is not None:  # inside the run folder: saves carry previews/ over
                path = RunFolder(trainer.out_dir).preview_path(event.step)
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    event.preview.save(path)
                except OSError as e:  # a preview is not worth stopping for; a checkpoint that fails says so
                    bar.write(f"[warning] step {event.step}: could not write {path} ({why(e)})")
            if event.kind in ("checkpoint", "done", "stopped") and ranks.is_main:
                bar.write(f"{event.message} -> {event.checkpoint}")
    except KeyboardInterrupt:
        bar.close()
        path = trainer.save()
        print(f"interrupted at step {trainer.step}; checkpoint saved to {path} (continue with --resume {path})", file=sys.stderr)
        return 130
    bar.close()
    return 130 if stop is not None and stop.is_set() else 0


def _quiet(*args: Any, **kwargs: Any) -> None:
    pass


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
