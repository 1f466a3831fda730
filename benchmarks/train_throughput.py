"""Training throughput: our Trainer against the classic PyTorch DCGAN tutorial loop, same run, same networks.

    python benchmarks/train_throughput.py                          # 32 and 64 px, 200 and 2000 images
    python benchmarks/train_throughput.py --threads 1 --steps 30 --sizes 32 --counts 200

For each image count, PNG files (Fashion-MNIST images, tinted to 3 channels and enlarged to
``--png-scale`` times the training size; random shapes if Fashion-MNIST isn't installed) are written
to a temporary folder. Then, per size and count:

* **baseline**: the tutorial's way (``_common.TutorialDCGAN``): ``torchvision.datasets.ImageFolder``
  over the files with per-sample Resize/CenterCrop/ToTensor/Normalize, a ``DataLoader``
  (``shuffle=True``, the tutorial's settings, one row per ``--workers`` value), a Sigmoid-ended D
  with batch norm, ``nn.BCELoss``, separate D forwards for real and fake;
* **ours (defaults)**: ``gandemo.intake.load_images`` once (its time is shown, not counted in img/s),
  then ``Trainer.train()`` as the app runs it, with the default TrainConfig (DiffAugment, spectral
  norm, EMA, ...; bfloat16 autocast on CPUs with native bf16, fused Adam, one ``_foreach_lerp_`` EMA);
* **ours (float32)**: the same with ``amp=False``, to show what bfloat16 autocast contributes;
* **ours (fixes off)**: the same Trainer with every fix off (``_common.PLAIN``).

Same architecture (width 64, latent 100), batch size (32), image size and float32 weights
everywhere (autocast computes convolutions in bfloat16; weights, optimiser state and losses stay
float32). Every method gets ``--warmup`` steps, then ``--steps`` timed steps split into
``--rounds`` chunks that are interleaved round-robin across methods (each chunk after
``--rewarm`` untimed steps), so background load and clock changes hit every method alike.
img/s = images trained on / timed seconds. A second table splits each method's step into phases
(wall clock; exact on the CPU, where ops are synchronous).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from _common import (
    PLAIN,
    PhaseTimer,
    TutorialDCGAN,
    install_backward_timer,
    machine_facts,
    markdown_table,
    other_busy_processes,
    set_threads,
)
from PIL import Image, ImageDraw
from torch.utils.data import DataLoader
from torchvision import datasets as dset
from torchvision import transforms

from gandemo.datasets import fashion_mnist_dir, load_fashion_mnist
from gandemo.gan.train import TrainConfig, Trainer
from gandemo.intake import IntakeOptions, load_images

BATCH = 32
GOAL = 2.0
PHASES = ("data", "DiffAugment", "G forward", "D forward", "backward", "optimiser steps", "EMA",
          "NaN safety net (snapshots, checks)", "other")


# ----------------------------------------------------------------------------- test images


def write_pngs(folder: Path, count: int, side: int, seed: int = 0) -> str:
    """``count`` RGB PNGs of ``side`` px in ``folder/images`` (ImageFolder wants one sub-folder per class)."""
    out = folder / "images"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if fashion_mnist_dir() is not None:
        images, _ = load_fashion_mnist("train")
        for i in range(count):
            gray = images[i % len(images)].numpy().astype(np.float32) / 255.0
            tint = rng.uniform(0.3, 1.0, size=3).astype(np.float32)
            rgb = (gray[..., None] * tint * 255).astype(np.uint8)
            Image.fromarray(rgb, "RGB").resize((side, side), Image.BICUBIC).save(out / f"{i:05d}.png")
        return f"Fashion-MNIST training images, tinted, enlarged to {side}x{side}"
    for i in range(count):
        img = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(img)
        for _ in range(3):
            x0, y0 = rng.integers(0, side // 2, 2)
            x1, y1 = x0 + rng.integers(side // 8, side // 2, 2)
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([int(x0), int(y0), int(x1), int(y1)], fill=colour)
        img.save(out / f"{i:05d}.png")
    return f"random shapes, {side}x{side}"


# ----------------------------------------------------------------------------- methods


@dataclass
class Runner:
    name: str
    steps: Iterator[int]  # each next() trains one step and returns the number of images it used
    timer: PhaseTimer
    setup_s: float = 0.0
    images: int = 0
    seconds: float = 0.0
    timed_steps: int = 0
    chunk_rates: list[float] = field(default_factory=list)
    close: list = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.images / self.seconds if self.seconds else math.nan


def tutorial_runner(folder: Path, size: int, workers: int, device: str = "cpu") -> Runner:
    """The tutorial's loop over the PNGs in ``folder`` on ``device`` (scripts/gpu_check.py runs it on a GPU)."""
    t0 = time.perf_counter()
    dataset = dset.ImageFolder(root=str(folder), transform=transforms.Compose([
        transforms.Resize(size),
        transforms.CenterCrop(size),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ]))
    dataloader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers)
    gan = TutorialDCGAN(size, 3, seed=0, device=device)
    timer = PhaseTimer()
    timer.patch_module(gan.netG, "G forward")
    timer.patch_module(gan.netD, "D forward")
    timer.patch_optimizer(gan.optimizerD)
    timer.patch_optimizer(gan.optimizerG)
    state: dict[str, Iterator] = {}

    def steps() -> Iterator[int]:
        while True:  # for epoch in range(num_epochs): for i, data in enumerate(dataloader, 0): ...
            t = time.perf_counter()
            state["it"] = iter(dataloader)  # with workers: starts the worker processes, every epoch
            timer.add("data", time.perf_counter() - t)
            while True:
                t = time.perf_counter()
                data = next(state["it"], None)
                timer.add("data", time.perf_counter() - t)
                if data is None:
                    break
                gan.step(data[0])
                yield data[0].size(0)

    runner = Runner(f"tutorial loop (workers={workers})", steps(), timer, setup_s=time.perf_counter() - t0)
    runner.close.append(lambda: state.pop("it", None))  # shuts the worker processes down
    return runner


def ours_runner(name: str, data: torch.Tensor, size: int, overrides: dict, out_dir: Path, intake_s: float) -> Runner:
    t0 = time.perf_counter()
    config = TrainConfig(image_size=size, channels=3, batch_size=BATCH, steps=1_000_000, seed=0, **overrides)
    trainer = Trainer(data, config, out_dir, device="cpu")
    timer = PhaseTimer()
    timer.patch(trainer, "real_batch", "data")
    timer.patch(trainer, "augment", "DiffAugment")
    timer.patch_module(trainer.G, "G forward")
    timer.patch_module(trainer.D, "D forward")
    timer.patch_optimizer(trainer.opt_g)
    timer.patch_optimizer(trainer.opt_d)
    timer.patch(trainer, "update_ema", "EMA")
    timer.patch(trainer, "snapshot", "NaN safety net (snapshots, checks)")
    timer.patch(trainer, "params_finite", "NaN safety net (snapshots, checks)")

    def steps() -> Iterator[int]:
        for event in trainer.train():
            if event.kind in ("step", "preview"):
                yield config.batch_size
            elif event.kind == "health":
                print(f"  {name}: {event.health[0].text if event.health else 'health event'}")

    return Runner(name, steps(), timer, setup_s=time.perf_counter() - t0 + intake_s)


# ----------------------------------------------------------------------------- measuring


def measure(runners: list[Runner], warmup: int, steps: int, rounds: int, rewarm: int) -> None:
    for r in runners:
        for _ in range(warmup):
            next(r.steps)
    chunks = [steps // rounds + (i < steps % rounds) for i in range(rounds)]
    for i, chunk in enumerate(chunks):
        order = runners[i % len(runners):] + runners[: i % len(runners)]  # rotate who goes first
        for r in order:
            for _ in range(rewarm):
                next(r.steps)
            PhaseTimer.current, r.timer.recording = r.timer, True
            t0 = time.perf_counter()
            n = sum(next(r.steps) for _ in range(chunk))
            dt = time.perf_counter() - t0
            PhaseTimer.current, r.timer.recording = None, False
            r.images += n
            r.seconds += dt
            r.timed_steps += chunk
            r.chunk_rates.append(n / dt)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b and not math.isnan(b) else "n/a"


def baseline_of(runners: list[Runner]) -> Runner:
    return max((r for r in runners if r.name.startswith("tutorial")), key=lambda r: r.rate)


def find(runners: list[Runner], name: str) -> Runner | None:
    return next((r for r in runners if r.name == name), None)


OURS = ("ours (defaults)", "ours (float32)", "ours (fixes off)")


def summary_table(results: dict[tuple[int, int], list[Runner]]) -> str:
    headers = ["size", "images", "baseline img/s"]
    for name in OURS:
        headers += [f"{name.replace('ours', 'ours img/s')}", "speed-up"]
    rows = []
    for (size, count), runners in results.items():
        base = baseline_of(runners)
        row: list[object] = [size, count, f"{base.rate:.1f} {base.name.removeprefix('tutorial loop ')}"]
        for name in OURS:
            r = find(runners, name)
            row += [f"{r.rate:.1f}", f"**{ratio(r.rate, base.rate)}**" if name == "ours (defaults)" else
                    ratio(r.rate, base.rate)] if r else ["-", "-"]
        rows.append(row)
    return markdown_table(headers, rows)


def detail_table(results: dict[tuple[int, int], list[Runner]]) -> str:
    rows = []
    for (size, count), runners in results.items():
        base = baseline_of(runners)
        for r in runners:
            spread = f"{min(r.chunk_rates):.0f}-{max(r.chunk_rates):.0f}" if len(r.chunk_rates) > 1 else ""
            rows.append([size, count, r.name, f"{r.rate:.1f}", spread, ratio(r.rate, base.rate),
                         f"{r.seconds / r.timed_steps * 1000:.0f}", f"{r.setup_s:.2f}"])
    headers = ["size", "images", "method", "img/s", "range over chunks", "vs baseline", "ms / step", "setup s (once)"]
    return markdown_table(headers, rows, [True, True, False, True, True, True, True, True])


def phase_table(runners: list[Runner]) -> str:
    rows = []
    for phase in PHASES:
        cells = []
        for r in runners:
            if phase == "other":
                ms = (r.seconds - sum(r.timer.seconds.values())) / r.timed_steps * 1000
            else:
                ms = r.timer.seconds.get(phase, 0.0) / r.timed_steps * 1000
            cells.append(f"{ms:.1f}" if ms >= 0.05 or phase == "other" else "-")
        rows.append([phase, *cells])
    rows.append(["**total**", *[f"**{r.seconds / r.timed_steps * 1000:.1f}**" for r in runners]])
    return markdown_table(["phase", *[r.name for r in runners]], rows, [False] + [True] * len(runners))


def run(args: argparse.Namespace) -> None:
    set_threads(args.threads)
    busy = other_busy_processes()
    print(f"# Training throughput, CPU\n\n{machine_facts()}")
    if busy:
        print(f"Other busy processes at the start: {'; '.join(busy)}")
    print(f"Batch {BATCH}, width 64, latent 100, float32 weights; {args.warmup} warm-up steps, {args.steps} timed "
          f"steps in {args.rounds} interleaved chunks (each after {args.rewarm} untimed steps); PNGs at "
          f"{args.png_scale}x the training size.\n", flush=True)
    restore_backward = install_backward_timer()
    results: dict[tuple[int, int], list[Runner]] = {}
    wall0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="gandemo-throughput-") as tmp:
            tmp_dir = Path(tmp)
            for size, count in itertools.product(args.sizes, args.counts):
                folder = tmp_dir / f"png{size}_{count}"
                t0 = time.perf_counter()
                what = write_pngs(folder, count, size * args.png_scale)
                print(f"## {size} px, {count} images ({what}; written in {time.perf_counter() - t0:.1f} s)", flush=True)
                t0 = time.perf_counter()
                data = load_images(str(folder), IntakeOptions(size=size, channels=3, fit="crop", device="cpu")).images
                intake_s = time.perf_counter() - t0
                runners = [tutorial_runner(folder, size, w) for w in args.workers]
                for name, overrides in zip(OURS, ({}, {"amp": False}, PLAIN)):
                    runners.append(ours_runner(name, data, size, overrides, tmp_dir / name.split()[1].strip("()"), intake_s))
                try:
                    measure(runners, args.warmup, args.steps, args.rounds, args.rewarm)
                finally:
                    for r in runners:
                        for close in r.close:
                            close()
                        r.timer.restore()
                results[(size, count)] = runners
                base = baseline_of(runners)
                for r in runners:
                    print(f"  {r.name}: {r.rate:.1f} img/s, {ratio(r.rate, base.rate)} the baseline", flush=True)
    finally:
        restore_backward()

    print("\n### Throughput (baseline: the faster tutorial row of the same size and count)\n")
    print(summary_table(results))
    print("\n### Every method\n")
    print(detail_table(results))
    for (size, count), runners in results.items():
        if count == max(args.counts):
            print(f"\n### Where a step's time goes, {size} px, {count} images (ms per step, wall clock)\n")
            print(phase_table(runners))
    speedups = [find(rs, "ours (defaults)").rate / baseline_of(rs).rate for rs in results.values()]  # type: ignore[union-attr]
    busy = other_busy_processes()
    print(f"\nWall time {time.perf_counter() - wall0:.0f} s; load average at the end "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}" + (f"; busy at the end: {'; '.join(busy)}" if busy else ""))
    met = all(x >= GOAL for x in speedups)
    print(f"Goal (ours >= {GOAL:.0f}x the baseline everywhere): {'met' if met else 'not met'} by the defaults "
          f"(speed-ups {', '.join(f'{x:.2f}x' for x in speedups)}).")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--steps", type=int, default=30, help="timed steps per method and configuration")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3, help="interleaved chunks the timed steps are split into")
    p.add_argument("--rewarm", type=int, default=2, help="untimed steps before each chunk")
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 64], choices=[32, 64, 128])
    p.add_argument("--counts", type=int, nargs="+", default=[200, 2000])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader num_workers for the baseline")
    p.add_argument("--png-scale", type=int, default=2, help="PNG side = training size x this")
    args = p.parse_args(argv)
    if args.steps < args.rounds:
        p.error("--steps must be at least --rounds")
    run(args)


if __name__ == "__main__":
    main()
