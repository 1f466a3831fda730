"""Few-shot quality: our Trainer's defaults against a plain DCGAN on 100 images of one Fashion-MNIST class.

    python benchmarks/few_shot_quality.py                                  # class 7 (Sneaker), 1500 steps, seed 0
    python benchmarks/few_shot_quality.py --seeds 0 1 2 --methods ours plain tutorial --out /tmp/few_shot

Training set: the first ``--images`` (100) training images of ``--class-index``, zero-padded to 32x32,
one channel. Every method trains for the same ``--steps`` at batch 32 from the same seed, on the CPU:

* ``ours``: ``Trainer`` with the default TrainConfig (DiffAugment, label smoothing, spectral norm,
  skip-D, EMA; bfloat16 autocast where the CPU has native bf16); samples come from the EMA
  generator, as exported;
* ``plain``: the same Trainer with every fix off (``_common.PLAIN``: BCE, no DiffAugment, no SN,
  no EMA, no smoothing, no skip-D, no mirroring), i.e. a plain DCGAN;
* ``tutorial`` (optional): the PyTorch DCGAN tutorial's loop (``_common.TutorialDCGAN``) over a
  shuffled ``DataLoader`` of the same images (100 = 3 x 32 + 4: every 4th batch has 4 images);
  ``tutorial-drop-last`` drops that small batch, like our Trainer, which never makes one;
* ``ours-fp32`` (optional): ours in float32 throughout (``amp=False``), to check that bfloat16
  autocast doesn't cost quality;
* ``ours-mirror`` (optional): ours with random horizontal flips (``mirror=True``, off by default:
  Fashion-MNIST's shoes all face one way).

Quality: Fréchet distance in the project classifier's feature space (``gandemo.evaluation``)
between ``--samples`` (2000) samples (latent seeds 0..1999, generator in eval mode) and the class's
test images (1000). For scale, the table also shows the FD of 2000 *other* training images of the
class (a floor: what a perfect generator would get with these sample sizes). Sample grids (8x8,
enlarged 3x) go to ``--out``; so does ``results.jsonl``, one line per run: runs with the same
settings from earlier invocations (e.g. other seeds, run in parallel with ``--threads 1``) are
included in the table; ``--fresh`` starts the file over.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import (
    PLAIN,
    TutorialDCGAN,
    machine_facts,
    markdown_table,
    other_busy_processes,
    set_threads,
)
from torch.utils.data import DataLoader, TensorDataset

from gandemo.datasets import CLASS_NAMES, load_fashion_mnist, to_generator_range
from gandemo.evaluation import embed, frechet_distance, generator_samples, load_classifier
from gandemo.gan.train import TrainConfig, Trainer
from gandemo.images import make_grid, upscale

GOAL_RATIO = 0.7
METHODS = ("ours", "plain", "tutorial", "tutorial-drop-last", "ours-fp32", "ours-mirror")
LABELS = {"ours": "ours (defaults, EMA generator)", "plain": "plain DCGAN (Trainer, fixes off)",
          "tutorial": "PyTorch tutorial loop", "ours-fp32": "ours in float32 (amp off)",
          "ours-mirror": "ours + mirror=True", "tutorial-drop-last": "PyTorch tutorial loop, drop_last=True"}
OVERRIDES: dict[str, dict[str, Any]] = {"plain": PLAIN, "ours-fp32": {"amp": False}, "ours-mirror": {"mirror": True}}


def training_images(class_index: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the first ``n`` training images of the class as uint8 (n, 1, 32, 32), the class's other training images)."""
    images, labels = load_fashion_mnist("train")
    of_class = images[labels == class_index]
    if of_class.shape[0] < n:
        raise SystemExit(f"class {class_index} has only {of_class.shape[0]} training images")
    padded = torch.nn.functional.pad(of_class[:, None], (2, 2, 2, 2), value=0)  # 0 -> -1: the classifier's padding
    return padded[:n].contiguous(), padded[n:]


def train(method: str, data: torch.Tensor, steps: int, seed: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train one generator; returns it (eval mode is set by the sampler) and facts about the run."""
    t0 = time.perf_counter()
    facts: dict[str, Any] = {}
    if method.startswith("tutorial"):
        gan = TutorialDCGAN(32, 1, seed=seed)
        loader = DataLoader(TensorDataset(data.float().div(127.5).sub(1.0)), batch_size=32, shuffle=True,
                            generator=torch.Generator().manual_seed(seed), drop_last=method == "tutorial-drop-last")
        done = 0
        while done < steps:
            for (batch,) in loader:
                gan.step(batch)
                done += 1
                if done == steps:
                    break
        gen: torch.nn.Module = gan.netG
        facts["final_losses"] = {"loss_d": gan.D_losses[-1], "loss_g": gan.G_losses[-1]}
    else:
        overrides = OVERRIDES.get(method, {})
        config = TrainConfig(image_size=32, channels=1, batch_size=32, steps=steps, seed=seed,
                             checkpoint_every=steps + 1, **overrides)
        recoveries = 0
        with tempfile.TemporaryDirectory(prefix="gandemo-few-shot-") as tmp:
            trainer = Trainer(data, config, Path(tmp) / "run", device="cpu")
            last: dict[str, float] = {}
            for event in trainer.train():
                recoveries += event.kind == "health" and any(h.code == "non_finite" for h in event.health)
                if event.losses:
                    last = event.losses
        gen = trainer.G_ema
        facts.update(skipped_d=trainer.skipped_d, recoveries=recoveries, final_losses=last)
        if method != "plain":
            facts["live_generator"] = trainer.G  # scored too: how much the EMA adds
    facts["train_s"] = time.perf_counter() - t0
    return gen, facts


def score(classifier: torch.nn.Module, images: torch.Tensor, ref_feats: np.ndarray, class_index: int) -> dict[str, float]:
    feats, probs = embed(classifier, images)
    return {"fd": frechet_distance(feats, ref_feats), "as_class": float((probs.argmax(1) == class_index).mean()),
            "confidence": float(probs.max(1).mean())}


def save_grid(images: torch.Tensor, path: Path) -> None:
    upscale(make_grid(images[:64], columns=8, padding=1), 3).save(path)


def settings_key(args: argparse.Namespace) -> dict[str, Any]:
    return {"class_index": args.class_index, "images": args.images, "steps": args.steps, "samples": args.samples}


def fmt_mean(values: list[float]) -> str:
    if len(values) > 1:
        return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"
    return f"{values[0]:.2f}"


def report(results: list[dict[str, Any]], floor: float, n_floor: int, class_name: str) -> str:
    by_method: dict[str, dict[int, dict[str, Any]]] = {}
    for r in results:
        by_method.setdefault(r["method"], {})[r["seed"]] = r
    plain = by_method.get("plain", {})
    rows = []
    for method in [m for m in METHODS if m in by_method] + sorted(set(by_method) - set(METHODS)):
        runs = by_method[method]
        seeds = sorted(runs)
        fds = [runs[s]["fd"] for s in seeds]
        paired = [runs[s]["fd"] / plain[s]["fd"] for s in seeds if s in plain]
        live = [runs[s]["fd_live"] for s in seeds if runs[s].get("fd_live") is not None]
        rows.append([
            LABELS.get(method, method), len(seeds), " / ".join(f"{x:.2f}" for x in fds), fmt_mean(fds),
            f"{statistics.mean(paired):.2f}x" if paired else "n/a",
            fmt_mean(live) if live else "-",
            f"{statistics.mean(runs[s]['as_class'] for s in seeds):.1%}",
            f"{statistics.mean(runs[s]['confidence'] for s in seeds):.3f}",
            f"{statistics.mean(runs[s]['train_s'] for s in seeds):.0f}",
        ])
    rows.append([f"real: {n_floor} other training {class_name} images (floor)", "-", "-", f"{floor:.2f}", "-", "-",
                 "-", "-", "-"])
    headers = ["method", "seeds", "FD per seed", "FD mean ± sd", "FD ratio vs plain (mean of per-seed ratios)", "FD of the live G",
               f"classified as {class_name}", "confidence", "train s / run"]
    return markdown_table(headers, rows, [False, True, True, True, True, True, True, True, True])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--class-index", type=int, default=7, choices=range(10), help="Fashion-MNIST class (7: Sneaker)")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--methods", nargs="+", default=["ours", "plain"], choices=METHODS)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--out", type=Path, default=Path("/tmp/few_shot"))
    p.add_argument("--fresh", action="store_true", help="forget results.jsonl from earlier invocations")
    p.add_argument("--report-only", action="store_true", help="train nothing; print the table of results.jsonl")
    args = p.parse_args(argv)

    set_threads(args.threads)
    wall0 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "results.jsonl"
    if args.fresh and log.exists():
        log.unlink()
    class_name = CLASS_NAMES[args.class_index]
    busy = other_busy_processes()
    print(f"# Few-shot quality: {args.images} {class_name} images, 32x32x1, {args.steps} steps, batch 32\n\n"
          f"{machine_facts()}" + (f"\nOther busy processes at the start: {'; '.join(busy)}" if busy else ""), flush=True)

    data, others = training_images(args.class_index, args.images)
    save_grid(data.float().div(127.5).sub(1), args.out / "training_images.png")
    classifier = load_classifier()
    test_images, test_labels = load_fashion_mnist("test")
    ref_feats = embed(classifier, to_generator_range(test_images[test_labels == args.class_index]))[0]
    floor_imgs = others[:args.samples].float().div(127.5).sub(1)
    floor = score(classifier, floor_imgs, ref_feats, args.class_index)["fd"]
    print(f"Reference: {len(ref_feats)} test images of class {args.class_index} ({class_name}); "
          f"floor FD ({len(floor_imgs)} other training images) {floor:.2f}\n", flush=True)

    for seed in [] if args.report_only else args.seeds:
        for method in args.methods:
            gen, facts = train(method, data, args.steps, seed)
            samples = generator_samples(gen, args.samples, seed=0)
            result = {**settings_key(args), "method": method, "seed": seed, "threads": args.threads,
                      **score(classifier, samples, ref_feats, args.class_index), "train_s": facts["train_s"]}
            live = facts.get("live_generator")
            result["fd_live"] = (score(classifier, generator_samples(live, args.samples, seed=0), ref_feats,
                                       args.class_index)["fd"] if live is not None else None)
            for key in ("skipped_d", "recoveries", "final_losses"):
                if key in facts:
                    result[key] = facts[key]
            grid = args.out / f"{method}_seed{seed}.png"
            save_grid(samples, grid)
            with log.open("a") as f:
                f.write(json.dumps(result) + "\n")
            live_text = "" if result["fd_live"] is None else f", live G {result['fd_live']:.2f}"
            print(f"  seed {seed} {method}: FD {result['fd']:.2f}{live_text}, {result['as_class']:.1%} classified as "
                  f"{class_name}, trained in {facts['train_s']:.0f} s"
                  + (f", D skipped {facts['skipped_d']}x" if "skipped_d" in facts else "") + f" -> {grid}", flush=True)

    key = settings_key(args)
    lines = log.read_text().splitlines() if log.exists() else []
    results = [r for r in map(json.loads, lines) if all(r.get(k) == v for k, v in key.items())]
    latest: dict[tuple[str, int], dict[str, Any]] = {(r["method"], r["seed"]): r for r in results}  # last run wins
    print("\n" + report(list(latest.values()), floor, len(floor_imgs), class_name))
    paired = sorted({s for (m, s) in latest if m == "ours"} & {s for (m, s) in latest if m == "plain"})
    ours = [latest[("ours", s)]["fd"] for s in paired]
    plain = [latest[("plain", s)]["fd"] for s in paired]
    busy = other_busy_processes()
    print(f"\nWall time {time.perf_counter() - wall0:.0f} s; {args.threads} thread(s); grids and results.jsonl in "
          f"{args.out}" + (f"; busy at the end: {'; '.join(busy)}" if busy else ""))
    if ours and plain:
        r = statistics.mean(ours) / statistics.mean(plain)
        verdict = "met" if r <= GOAL_RATIO else "not met"
        print(f"Goal (ours <= {GOAL_RATIO}x plain's FD): {verdict} (mean FD {statistics.mean(ours):.2f} vs "
              f"{statistics.mean(plain):.2f}: {r:.2f}x over seed(s) {', '.join(map(str, paired))}).")
    if any(math.isnan(r["fd"]) for r in latest.values()):
        print("Some runs produced NaN samples.")


if __name__ == "__main__":
    main()
