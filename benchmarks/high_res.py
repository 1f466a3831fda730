"""High resolution: plain DCGAN against MSG-GAN and progressive growing on the same images, same time each.

    nice -n 10 python benchmarks/high_res.py                          # 64 px, CPU, 3 seeds x 4 CPU-minutes each
    python benchmarks/high_res.py --size 128 --device cuda --budget-s 120 --width 64 --batch 64   # on a GPU

Images: the Noto Color Emoji glyphs that ``scripts/render_emoji.py`` renders (about 1,400, offline), at
``--size`` px, flattened onto white (RGB): colour and layout matter, there is no classifier for them.

All architectures train with the project's Trainer and its default settings (DiffAugment, label
smoothing, spectral norm, skip-D, EMA, bfloat16 only where the CPU has it natively); only ``arch``
differs (``dcgan``, ``msg``: gandemo/gan/msg.py, ``progressive``: gandemo/gan/progressive.py), at the same
width and batch. Progressive growing is scheduled in steps, the budget is time: before each progressive run
ten full-size steps of a DCGAN with the same settings are timed, and ``grow_steps`` is set so that growing
takes the first half of the steps the budget would give at full size (lower resolutions are cheaper, so it
finishes earlier than half the budget; ``--grow-steps`` fixes it instead). Each run gets the same
time budget: on the CPU the *process CPU time* (one thread, so a loaded machine slows the clock of a run
but not its share), on a GPU the wall time with the GPU synchronised. Whatever the architectures cost per
step, they get equal time, not equal steps.

Quality: the colour-and-layout Fréchet distance of ``gandemo.evaluation`` (``cell_features``: 8x8 cell
means, ``frechet_distance``) between ``--samples`` samples of the EMA generator (latent seeds 0..n-1)
and the real images, at half and at the full budget (evaluation time is not counted). For scale the
table shows the distance between two random halves of the real set (a floor for these sample sizes).
Sample grids side by side (real | each architecture, first seed) go to ``--grid`` (a small PNG).
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import REPO, machine_facts, markdown_table, other_busy_processes, set_threads
from PIL import Image, ImageDraw

from gandemo.evaluation import cell_features, frechet_distance, to_unit_hwc
from gandemo.gan.latent import latents_for_seeds
from gandemo.gan.progressive import GrowthSchedule
from gandemo.gan.train import TrainConfig, Trainer
from gandemo.images import make_grid, upscale
from gandemo.intake import IntakeOptions, load_images

sys.path.insert(0, str(REPO / "scripts"))
import render_emoji  # noqa: E402

ARCHS = ("dcgan", "msg", "progressive")
NAMES = {"dcgan": "DCGAN", "msg": "MSG-GAN", "progressive": "progressive"}


def grow_steps_for(data: torch.Tensor, config: TrainConfig, budget_s: float, device: str) -> int:
    """grow_steps that make growing take half the steps ``budget_s`` gives at full size: 10 timed DCGAN steps."""
    with tempfile.TemporaryDirectory(prefix="high-res-calibrate-") as out:
        trainer = Trainer(data, replace(config, arch="dcgan"), out, device=device)
        trainer.train_step()  # warm-up, not timed
        clock = Clock(trainer.device)
        t0 = clock()
        for _ in range(10):
            trainer.train_step()
        per_step = (clock() - t0) / 10
    steps = budget_s / max(per_step, 1e-9)
    return GrowthSchedule.automatic(config.image_size, int(steps))


def emoji_images(size: int, folder: Path | None) -> torch.Tensor:
    """The emoji set at ``size`` px as uint8 (N, 3, size, size), flattened onto white."""
    with tempfile.TemporaryDirectory(prefix="high-res-emoji-") as tmp:
        if folder is None:
            folder = Path(tmp)
            render_emoji.main([str(folder), "--size", str(size)])
        options = IntakeOptions(size=size, channels=3, alpha="flatten", background=(255, 255, 255), min_images=8,
                                device="cpu")
        return load_images(folder, options).images


def features(images: torch.Tensor) -> np.ndarray:
    """cell_features of a (N, C, H, W) batch in [-1, 1]."""
    return cell_features(to_unit_hwc(images.cpu()))


@torch.no_grad()
def samples(trainer: Trainer, n: int, batch: int = 250) -> torch.Tensor:
    G = trainer.G_ema
    z = latents_for_seeds(list(range(n)), trainer.config.latent_dim)
    return torch.cat([G(chunk.to(trainer.device)).float().cpu() for chunk in z.split(batch)])


class Clock:
    """Seconds this run has used: CPU time of this process on the CPU, synchronised wall time on a GPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return time.perf_counter()
        return time.process_time()


def run(arch: str, seed: int, data: torch.Tensor, real_feats: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    config = TrainConfig(image_size=args.size, channels=3, arch=arch, width_g=args.width, width_d=args.width,
                         batch_size=args.batch, seed=seed, steps=1_000_000, preview_every=0)
    if arch == "progressive":
        config = replace(config, grow_steps=args.grow_steps or grow_steps_for(data, config, args.budget_s, args.device))
    with tempfile.TemporaryDirectory(prefix="high-res-run-") as out:
        trainer = Trainer(data, config, out, device=args.device)
        clock = Clock(trainer.device)
        used, fd_half, start_wall = 0.0, float("nan"), time.perf_counter()
        while used < args.budget_s:
            t0 = clock()
            trainer.train_step()
            used += clock() - t0
            if np.isnan(fd_half) and used >= args.budget_s / 2:  # not counted: evaluation, not training
                fd_half = frechet_distance(features(samples(trainer, args.samples)), real_feats)
        images = samples(trainer, args.samples)
        fd = frechet_distance(features(images), real_feats)
        precision = str(trainer.amp_dtype).removeprefix("torch.") if trainer.amp else "float32"
        grown = trainer.growth is None or trainer.step >= trainer.growth.grown_step
        result = {"arch": arch, "seed": seed, "steps": trainer.step, "budget_s": used, "fd_half": fd_half, "fd": fd,
                  "wall_s": time.perf_counter() - start_wall, "precision": precision, "grid": images[:16],
                  "grow_steps": config.grow_steps if arch == "progressive" else None, "grown": grown}
    print(f"  {arch:11s} seed {seed}: {result['steps']} steps in {used:.0f} s ({precision}), "
          f"FD half {fd_half:.2f}, FD end {fd:.2f}" + (f", grow steps {config.grow_steps}" if result["grow_steps"] else ""),
          flush=True)
    return result


def labelled(grid: Image.Image, label: str) -> Image.Image:
    out = Image.new("RGB", (grid.width, grid.height + 18), (255, 255, 255))
    out.paste(grid.convert("RGB"), (0, 18))
    ImageDraw.Draw(out).text((4, 3), label, fill=(0, 0, 0))
    return out


def side_by_side(panels: list[tuple[str, torch.Tensor]], size: int) -> Image.Image:
    grids = [labelled(upscale(make_grid(images, columns=4), max(1, 64 // size)), label) for label, images in panels]
    gap = 8
    out = Image.new("RGB", (sum(g.width for g in grids) + gap * (len(grids) - 1), grids[0].height), (255, 255, 255))
    x = 0
    for g in grids:
        out.paste(g, (x, 0))
        x += g.width + gap
    return out


def mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, choices=(32, 64, 128), default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--budget-s", type=float, default=240.0,
                        help="training time per run: CPU seconds on the CPU, wall seconds on a GPU (default 240)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--width", type=int, default=32, help="network width of G and D (default 32)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--samples", type=int, default=1000, help="samples per Fréchet distance (default 1000)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run (default 1)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at the same time, each in its own process "
                        "(CPU budgets are per process, so this changes the wall time, not the comparison)")
    parser.add_argument("--data", type=Path, default=None, help="a folder of images instead of the rendered emoji")
    parser.add_argument("--archs", nargs="+", choices=ARCHS, default=list(ARCHS), help="architectures (default: all)")
    parser.add_argument("--grow-steps", type=int, default=0, help="progressive: steps per smaller resolution "
                        "(default 0: half of the steps the budget gives at full size, measured before each run)")
    parser.add_argument("--grid", type=Path, default=None, help="where the side-by-side PNG goes "
                        "(default benchmarks/high_res_<size>.png)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    busy = other_busy_processes()
    archs = [a for a in ARCHS if a in args.archs]
    print(f"# High resolution: {' vs '.join(NAMES[a] for a in archs)} at {args.size} px, "
          f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(machine_facts())
    if busy:
        print("other busy processes at the start: " + "; ".join(busy[:5]))
    data = emoji_images(args.size, args.data)
    real = data.float().div(127.5).sub(1)
    real_feats = features(real)
    halves = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))
    floor = frechet_distance(features(real[halves[: len(real) // 2]]), features(real[halves[len(real) // 2:]]))
    clock = "CPU seconds (process time, 1 thread)" if torch.device(args.device).type == "cpu" else "GPU wall seconds"
    print(f"{len(data)} images; budget {args.budget_s:.0f} {clock} per run; width {args.width}, batch {args.batch}; "
          f"FD of real half vs real half: {floor:.2f}\n")
    plan = [(arch, seed, data, real_feats, args) for seed in args.seeds for arch in archs]
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs, initializer=set_threads, initargs=(args.threads,)) as pool:
            results = pool.starmap(run, plan)
    else:
        results = [run(*item) for item in plan]

    rows = [[r["arch"], r["seed"], r["steps"], f"{r['budget_s']:.0f}", f"{r['wall_s']:.0f}", r["precision"],
             f"{r['fd_half']:.2f}", f"{r['fd']:.2f}" + ("" if r["grown"] else " (still growing)"),
             r["grow_steps"] or "-"] for r in results]
    print("\n" + markdown_table(["arch", "seed", "steps", "train s", "wall s", "precision", "FD at half time",
                                 "FD at end", "grow steps"], rows))
    summary = []
    for arch in archs:
        mine = [r for r in results if r["arch"] == arch]
        summary.append([arch, len(mine), f"{statistics.mean(r['steps'] for r in mine):.0f}",
                        mean_sd([r["fd_half"] for r in mine]), mean_sd([r["fd"] for r in mine])])
    print("\n" + markdown_table(["arch", "seeds", "mean steps", "FD at half time (mean ± sd)", "FD at end (mean ± sd)"],
                                summary))
    by_seed = {(r["arch"], r["seed"]): r["fd"] for r in results}
    print()
    for arch in (a for a in archs if a != "dcgan" and "dcgan" in archs):
        wins = sum(by_seed[(arch, s)] < by_seed[("dcgan", s)] for s in args.seeds)
        ratio = (statistics.mean(by_seed[(arch, s)] for s in args.seeds)
                 / statistics.mean(by_seed[("dcgan", s)] for s in args.seeds))
        print(f"{NAMES[arch]} / DCGAN mean FD at end: {ratio:.2f} (lower is better); {NAMES[arch]} lower on {wins} of "
              f"{len(args.seeds)} seeds.")
    print(f"Real-vs-real floor: {floor:.2f}.")
    first = args.seeds[0]
    panels = [("real", real[torch.randperm(len(real), generator=torch.Generator().manual_seed(1))[:16]])]
    panels += [(f"{NAMES[r['arch']]} seed {first}: FD {r['fd']:.1f}", r["grid"])
               for r in results if r["seed"] == first]
    grid_path = args.grid or REPO / "benchmarks" / f"high_res_{args.size}.png"
    # 256 colours: a small file for the repository (the grids are for looking at, not for measuring)
    side_by_side(panels, args.size).quantize(256, dither=Image.Dither.NONE).save(grid_path, optimize=True)
    print(f"grids: {grid_path}")
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
