"""Time to quality on Fashion-MNIST (32 px): the project's training against the plain DCGAN tutorial loop.

    python benchmarks/time_to_quality.py                               # 15 CPU minutes per runner
    python benchmarks/time_to_quality.py --cpu-minutes 2 --eval-every 30 --runners tutorial sn-ema
    python benchmarks/time_to_quality.py --report-only --out /tmp/gandemo-ttq   # table from a finished run
    python benchmarks/time_to_quality.py --runners bn-ema99-drop --match-steps OLD/bn-ema99/curve.jsonl
        # a variant trained to the same steps as an earlier run (evaluated where it was), for a host slower
        # than that run's: CPU minutes compare only within one machine and session
    python benchmarks/time_to_quality.py --runners bn-ema99 --ema-shadows 0.999 0.98 0.95 0.9 0
        # one training seen through several EMA decays (bn-ema99/ema0.95, ...): the decay never changes the
        # training itself, so one run compares them all on the same trajectory
    python benchmarks/time_to_quality.py --runners bn-ema99 --ema-shadows 0.98 --match-steps CURVE --resume
        # the same command again after an interruption (a closed session, a killed process): the Trainer's
        # runners go on from their last evaluation point, exactly as if never stopped (tutorial runners can't)
    python benchmarks/time_to_quality.py --report-only --runners bn-ema99 --n-final 10000 --out OUT
        # without a tutorial run in OUT: a runner and its EMA shadows compared at their last common evaluation

Runners (each in its own process, 1 torch thread, started together, so background load hits all alike):

* ``tutorial``: the PyTorch DCGAN tutorial's training step (``_common.TutorialDCGAN``, the same step
  ``train_throughput.py``'s tutorial runner times): batch-norm D ending in a Sigmoid, ``nn.BCELoss``,
  Adam 2e-4 / beta1 0.5, batch 128, float32, a shuffling ``DataLoader`` over the padded images;
  ``tutorial-seed1`` / ``tutorial-seed2``: the same loop from other seeds (how much its scores vary);
* ``defaults``: gandemo's ``Trainer.train()`` with the default ``TrainConfig`` (the app's defaults:
  DiffAugment, spectral norm, skip-D, label smoothing, EMA, batch 32, bfloat16 autocast on CPUs
  that compute it natively);
* ``sn-ema`` / ``bn-ema``: candidate recipes for the bundled model (``RECIPES``): the Trainer with the
  few-image remedies off and an EMA of G, exported with re-estimated batch-norm statistics like
  ``scripts/train_bundled.py`` exports the bundled model.

Every runner counts its own process CPU time of training only (``time.process_time``, evaluation
excluded) and every ``--eval-every`` CPU seconds evaluates 2,000 seeded samples in four feature
spaces (``gandemo.evaluation_spaces.FeatureSpaces``: the project's classifier, a separately trained
pixel-MLP judge, an untrained random conv net, pixel PCA) and saves its generator. The tutorial is
sampled both ways a DCGAN can be: batch norm with running statistics (eval mode, how gandemo loads
a generator) and with batch statistics (train mode, how the tutorial draws its grids); its better
FD per space is the target. At the end the generators at the last CPU time every runner reached
are scored again with 10,000 samples. CPU time, not wall time: the machine may be shared.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from _common import REPO, TutorialDCGAN, machine_facts, markdown_table, other_busy_processes, set_threads
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, TensorDataset

from gandemo.datasets import CLASS_NAMES, load_fashion_mnist, to_generator_range
from gandemo.device import native_bfloat16
from gandemo.evaluation import generator_samples
from gandemo.evaluation_spaces import CLASSIFIERS, SPACES, FeatureSpaces
from gandemo.gan.models import DCGANGenerator
from gandemo.gan.train import TrainConfig, Trainer, ema_update

sys.path.insert(0, str(REPO / "scripts"))
from train_bundled import (  # noqa: E402 - the recipes, their data and export
    BUNDLED_RECIPE,
    DCGAN_EMA_RECIPE,
    fashion_mnist_u8,
    recompute_batchnorm,
)

# Candidate recipes for the bundled model: TrainConfig settings on top of 32 px, 1 channel, seed 0.
# Fashion-MNIST has 60,000 images, so the defaults' few-image remedies (DiffAugment, skip-D) are off.
RECIPES: dict[str, dict[str, Any]] = {
    # spectral-norm D (no batch norm), label smoothing 0.9, EMA of G
    "sn-ema": {"batch_size": 64, "diffaugment": "", "d_skip_threshold": 0.0, "ema_decay": 0.999},
    # the DCGAN paper's batch-norm D and plain BCE (every fix off, like _common.PLAIN) plus an EMA of G
    "bn-ema": DCGAN_EMA_RECIPE,  # scripts/train_bundled.py's first recipe, seed 0: the sixth session's bundled model
    # the seventh session's runs for more even classes: the tutorial's batch of 128, and another seed; seed 1 was
    # the bundled model in the seventh session
    "bn-ema-b128": {**DCGAN_EMA_RECIPE, "batch_size": 128},
    "bn-ema-seed1": {**DCGAN_EMA_RECIPE, "seed": 1},
    # the eighth session's, seed 1 too: ProGAN's minibatch standard deviation in D, and a smaller batch
    "bn-ema-mbstd": {**DCGAN_EMA_RECIPE, "seed": 1, "minibatch_std": True},
    "bn-ema-b32": {**DCGAN_EMA_RECIPE, "seed": 1, "batch_size": 32},
    # and a short EMA (about 100 steps instead of 1000): averaging G over longer spans made its classes less even.
    # bn-ema99 is the bundled model since (scripts/train_bundled.py's BUNDLED_RECIPE and DEFAULT_SEED)
    "bn-ema99": {**BUNDLED_RECIPE, "seed": 1},
    "bn-ema99-b32": {**BUNDLED_RECIPE, "seed": 1, "batch_size": 32},
    # the ninth session's: the lesson's "suddenly lowering the learning rate" near the end of the 40 minutes,
    # once (x0.1 after step 12,000) and in two stages (x0.3 after 8,000 and again after 12,000)
    "bn-ema99-drop": {**BUNDLED_RECIPE, "seed": 1, "lr_drops": ((12_000, 0.1),)},
    "bn-ema99-drop2": {**BUNDLED_RECIPE, "seed": 1, "lr_drops": ((8_000, 0.3), (12_000, 0.3))},
    # the tenth session's: the bundled recipe's seed-to-seed spread (beside the tutorial's, below)
    "bn-ema99-seed0": {**BUNDLED_RECIPE, "seed": 0},
    "bn-ema99-seed2": {**BUNDLED_RECIPE, "seed": 2},
    # the eleventh session's: PacGAN's packing (D judges two images at once, one verdict for both), aimed at the rare
    # classes; from seeds 1 (the bundled model's), 0 and 2, each compared with the unpacked run of its seed (the
    # eleventh session ran seeds 1 and 0 to the end and stopped seed 2 early: benchmarks/RESULTS.md)
    "bn-ema99-pack2": {**BUNDLED_RECIPE, "seed": 1, "pack": 2},
    "bn-ema99-pack2-seed0": {**BUNDLED_RECIPE, "seed": 0, "pack": 2},
    "bn-ema99-pack2-seed2": {**BUNDLED_RECIPE, "seed": 2, "pack": 2},
    # and a wider D (96 instead of 64) at equal CPU time, run side by side with bn-ema99 on one host
    "bn-ema99-wd96": {**BUNDLED_RECIPE, "seed": 1, "width_d": 96},
}
# the tutorial loop, seeded like the tutorial's ``torch.manual_seed`` (weights and shuffling); "tutorial" is the
# reference every report compares against, the others measure how much its scores vary from seed to seed
TUTORIALS = {"tutorial": 0, "tutorial-seed1": 1, "tutorial-seed2": 2}
RUNNERS = (*TUTORIALS, "defaults", *RECIPES)
TUTORIAL_BATCH = 128
SAMPLE_BATCH = 250


# ----------------------------------------------------------------------------- runners


def recipe_config(recipe: str, steps: int = 1_000_000, seed: int = 0) -> TrainConfig:
    """A recipe's TrainConfig: checkpoints only at the end, a preview every 500 steps."""
    settings = {"seed": seed, **RECIPES[recipe]}  # a recipe may fix its own seed
    return TrainConfig(image_size=32, channels=1, steps=steps, preview_every=500, checkpoint_every=0,
                       checkpoint_minutes=0.0, **settings)


def train_steps(trainer: Trainer) -> Iterator[int]:
    """``trainer.train()`` (the app's loop) one step at a time; health notes printed."""
    for event in trainer.train():
        if event.kind in ("step", "preview"):
            yield event.step
        elif event.kind == "health" and event.health:
            print(f"  step {event.step}: {event.health[0].text}", flush=True)


class Run:
    """One training method: ``step()`` trains one step; ``generator()`` a CPU copy of what it would export."""

    def __init__(self, name: str, data_u8: torch.Tensor, scratch: Path, resume: Path | None = None):
        """``resume``: a run folder ``Trainer.save()`` wrote (a Trainer runner only) to go on from."""
        self.name = name
        self.steps = 0
        self.images = 0
        self.tutorial = name in TUTORIALS
        if self.tutorial:
            self.gan = TutorialDCGAN(32, 1, seed=TUTORIALS[name])
            dataset = TensorDataset(data_u8.float().div(127.5).sub(1.0))
            self.loader = DataLoader(dataset, batch_size=TUTORIAL_BATCH, shuffle=True, num_workers=0)
            self._batches = iter(self.loader)
            self.batch = TUTORIAL_BATCH
            self.precision = "float32"
        else:
            config = (TrainConfig(image_size=32, channels=1, steps=1_000_000, seed=0) if name == "defaults"
                      else recipe_config(name))
            self.trainer = (Trainer.resume(resume, data_u8, scratch / name, device="cpu") if resume
                            else Trainer(data_u8, config, scratch / name, device="cpu"))
            self._steps = train_steps(self.trainer)
            self.batch = config.batch_size
            self.precision = "bfloat16 autocast" if self.trainer.amp else "float32"

    def step(self) -> None:
        if self.tutorial:
            batch = next(self._batches, None)
            if batch is None:  # a new epoch, like the tutorial's ``for epoch ...: for data in dataloader``
                self._batches = iter(self.loader)
                batch = next(self._batches)
            self.gan.step(batch[0])
        else:
            next(self._steps)
        self.steps += 1
        self.images += self.batch

    def state(self) -> dict[str, torch.Tensor]:
        """The weights to keep: the tutorial's G, or the Trainer's EMA G (before any BN re-estimation)."""
        return cpu_state(self.gan.netG if self.tutorial else self.trainer.G_ema)


def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's weights as contiguous CPU copies, to save or to load into a fresh generator."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def generators(name: str, state: dict[str, torch.Tensor], bn_batches: int = 50) -> dict[str, Callable[[int], torch.Tensor]]:
    """label -> function(n) giving n seeded samples, for every way ``name``'s generator is sampled."""
    g = DCGANGenerator(32, 1, 100, 64)
    g.load_state_dict(state)
    g.requires_grad_(False)
    if name in TUTORIALS:
        def batch_stats(n: int) -> torch.Tensor:
            gen = copy.deepcopy(g).train()  # BN normalises with each batch of SAMPLE_BATCH samples
            return _seeded(gen, n)
        return {"running stats": lambda n: generator_samples(g, n, batch=SAMPLE_BATCH), "batch stats": batch_stats}
    if recipe_of(name) in RECIPES:  # exported like scripts/train_bundled.py exports: BN statistics re-estimated
        recompute_batchnorm(g, 100, batches=bn_batches)
    return {"": lambda n: generator_samples(g, n, batch=SAMPLE_BATCH)}


@torch.no_grad()
def _seeded(gen: torch.nn.Module, n: int) -> torch.Tensor:
    from gandemo.gan.latent import latents_for_seeds

    return torch.cat([gen(latents_for_seeds(list(range(s, min(s + SAMPLE_BATCH, n))), 100))
                      for s in range(0, n, SAMPLE_BATCH)])


def recipe_of(name: str) -> str:
    """The runner a curve belongs to: ``bn-ema99/ema0.95`` (an EMA shadow, see ``--ema-shadows``) is bn-ema99's."""
    return name.split("/")[0]


def label(name: str, mode: str) -> str:
    return f"{name} ({mode})" if mode else name


# ----------------------------------------------------------------------------- one worker process


def worker(args: argparse.Namespace) -> None:
    set_threads(1)
    out = Path(args.out) / args.worker
    out.mkdir(parents=True, exist_ok=True)
    budget, every = args.cpu_minutes * 60, args.eval_every
    # --match-steps: evaluate at another run's steps and stop at its last (a slower or busier machine then
    # trains the same number of steps rather than the same CPU time)
    match = [json.loads(line)["steps"] for line in Path(args.match_steps).read_text().splitlines()] if args.match_steps else []
    saved = last_resume_point(out, [f"{d:g}" for d in args.ema_shadows]) if args.resume else None
    progress = json.loads((saved / "progress.json").read_text()) if saved else {}
    if saved and ((progress["point"] >= len(match)) if match else progress["train_cpu_s"] >= budget):
        print(f"{args.worker}: finished before, at step {progress['steps']} (point {progress['point']})", flush=True)
        return
    data_u8 = fashion_mnist_u8()
    reference = to_generator_range(load_fashion_mnist("test")[0][:args.reference_n], 32)
    spaces = FeatureSpaces(reference, knn_n=args.knn_n)
    wall_end = time.time() + args.wall_minutes * 60
    with tempfile.TemporaryDirectory(prefix="gandemo-ttq-") as scratch:
        run = Run(args.worker, data_u8, Path(scratch), resume=saved / "run" if saved else None)
        # --ema-shadows: more EMAs of the same G with other decays, updated like the Trainer updates its own
        # (outside the training CPU count: an observation, not part of the recipe); each is a curve of its own
        shadows = {} if run.tutorial else {
            d: (out / f"ema{d:g}", copy.deepcopy(run.trainer.G).eval().requires_grad_(False)) for d in args.ema_shadows}
        train_cpu, point = 0.0, 0
        if saved:  # where the last run stopped: its counters, its shadows, its curves up to that point
            point, train_cpu, run.steps, run.images = (progress[k] for k in PROGRESS)
            kept = load_file(str(saved / "shadows.safetensors"))
            for d, (_, shadow) in shadows.items():
                shadow.load_state_dict({k.split("/", 1)[1]: v for k, v in kept.items() if k.startswith(f"{d:g}/")})
            print(f"{args.worker}: resumed at step {run.steps} (point {point}, {train_cpu / 60:.1f} CPU min)", flush=True)
        for folder in [out, *(folder for folder, _ in shadows.values())]:
            folder.mkdir(exist_ok=True)
            curve = folder / "curve.jsonl"
            rows = curve.read_text().splitlines() if saved and curve.exists() else []
            # rows written after the last resume point are dropped: those steps are trained again
            curve.write_text("".join(r + "\n" for r in rows if json.loads(r)["point"] <= point))

        def done() -> bool:  # checked after each evaluation, so a run always ends with one
            return (point >= len(match)) if match else (train_cpu >= budget or time.time() > wall_end)

        finished = False
        with (out / "curve.jsonl").open("a") as log:
            while not finished:
                c0 = time.process_time()
                run.step()
                train_cpu += time.process_time() - c0
                for d, (_, shadow) in shadows.items():
                    ema_update(shadow, run.trainer.G, d, run.trainer.step)
                if (run.steps < match[point]) if match else (train_cpu < every * (point + 1)):
                    continue
                point += 1
                e0 = time.process_time()
                row: dict[str, Any] = {"point": point, "train_cpu_s": train_cpu, "steps": run.steps,
                                       "images": run.images, "precision": run.precision, "wall": time.time()}
                for folder, shadow in shadows.values():
                    shadow_row = evaluate_point(args, spaces, folder, cpu_state(shadow), dict(row))
                    with (folder / "curve.jsonl").open("a") as shadow_log:
                        shadow_log.write(json.dumps(shadow_row) + "\n")
                row = evaluate_point(args, spaces, out, run.state(), row)
                row["eval_cpu_s"] = time.process_time() - e0  # the shadows' evaluations included
                log.write(json.dumps(row) + "\n")
                log.flush()
                if not run.tutorial:
                    save_resume_point(out, run, shadows, {k: row[k] for k in PROGRESS})
                first = next(v for k, v in row.items() if isinstance(v, dict))
                print(f"{args.worker}: {train_cpu / 60:.1f} CPU min, step {run.steps}, FD " +
                      ", ".join(f"{s} {first['fd'][s]:.2f}" for s in SPACES), flush=True)
                finished = done()


RESUME = "resume"  # a Trainer runner's folder of resume points, one per evaluation point, the newest kept
PROGRESS = ("point", "train_cpu_s", "steps", "images")  # the counters a resume point keeps


def save_resume_point(out: Path, run: Run, shadows: dict[float, tuple[Path, torch.nn.Module]],
                      progress: dict[str, Any]) -> None:
    """Keep everything to go on from this evaluation point (``--resume``): the Trainer's run folder, the EMA
    shadows and the counters, in a new folder that ``resume/latest`` names once it is complete."""
    folder = out / RESUME / f"p{progress['point']:04d}"
    shutil.rmtree(folder, ignore_errors=True)
    run.trainer.save(folder / "run")
    save_file({f"{d:g}/{k}": v for d, (_, shadow) in shadows.items() for k, v in cpu_state(shadow).items()},
              str(folder / "shadows.safetensors"))
    (folder / "progress.json").write_text(json.dumps({**progress, "shadows": [f"{d:g}" for d in shadows]}))
    latest = out / RESUME / "latest"
    tmp = latest.with_suffix(".tmp")
    tmp.write_text(folder.name)
    os.replace(tmp, latest)  # only now is this point the one to resume from
    for old in (out / RESUME).glob("p*"):
        if old.name != folder.name:
            shutil.rmtree(old, ignore_errors=True)


def last_resume_point(out: Path, decays: list[str]) -> Path | None:
    """The folder of the newest complete resume point in ``out`` (None: none yet, start afresh). Shadows other
    than the saved ones can't be resumed: one line and exit."""
    latest = out / RESUME / "latest"
    if not latest.exists():
        return None
    folder = out / RESUME / latest.read_text().strip()
    saved = json.loads((folder / "progress.json").read_text())["shadows"]
    if sorted(saved, key=float) != sorted(decays, key=float):
        raise SystemExit(f"--resume: {out.name} was saved with --ema-shadows {' '.join(saved) or '(none)'}; "
                         "give the same decays to go on")
    return folder


def evaluate_point(args: argparse.Namespace, spaces: FeatureSpaces, folder: Path, state: dict[str, torch.Tensor],
                   row: dict[str, Any]) -> dict[str, Any]:
    """Save one evaluation point's generator in ``folder``, score it into ``row`` and return the row."""
    e0 = time.process_time()
    save_file(state, str(folder / f"g{row['point']:03d}.safetensors"))
    with torch.random.fork_rng():  # evaluation never changes the training's random stream
        for mode, sample in generators(args.worker, state, bn_batches=args.bn_batches).items():
            row[mode or "-"] = spaces.evaluate(sample(args.n_eval))
    row["eval_cpu_s"] = time.process_time() - e0
    return row


# ----------------------------------------------------------------------------- the report


def read_curves(out: Path, names: list[str]) -> dict[str, list[dict]]:
    """Each runner's curve, and after it its EMA shadows' (``--ema-shadows``), named ``runner/ema<decay>``."""
    curves = {}
    for name in names:
        paths = [out / name / "curve.jsonl", *sorted((out / name).glob("ema*/curve.jsonl"))]
        for path in paths if paths[0].exists() else []:
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if rows:
                curves[name if path.parent == out / name else f"{name}/{path.parent.name}"] = rows
    return curves


def modes_of(row: dict) -> list[str]:
    return [k for k, v in row.items() if isinstance(v, dict)]


def fmt(x: float, digits: int = 2) -> str:
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


def curve_table(curves: dict[str, list[dict]], point: int) -> tuple[str, dict[str, float]]:
    """CPU minutes each runner needs to reach the tutorial's FD at ``point`` (its better sampling mode)."""
    tut = curves["tutorial"][point - 1]
    targets = {s: min(tut[m]["fd"][s] for m in modes_of(tut)) for s in SPACES}
    rows = []
    for name, rows_ in curves.items():
        for mode in modes_of(rows_[0]):
            cells: list[object] = [label(name, "" if mode == "-" else mode)]
            for s in SPACES:
                hit = next((r for r in rows_[:point] if r[mode]["fd"][s] <= targets[s] + 1e-9), None)
                cells.append(f"{hit['train_cpu_s'] / 60:.1f} (step {hit['steps']})" if hit else "not reached")
            rows.append(cells)
    headers = ["runner", *[f"{s} (target {targets[s]:.2f})" for s in SPACES]]
    return markdown_table(headers, rows, [False] + [True] * len(SPACES)), targets


def balance_table(curves: dict[str, list[dict]], point: int, last: int = 4) -> str:
    """Class balance at each runner's last ``last`` evaluations up to ``point``: one snapshot's most/least
    frequent ratio swings from evaluation to evaluation as G drifts between classes, so the mean says more."""
    rows = []
    for name, rows_ in curves.items():
        window = rows_[max(0, point - last):point]
        for mode in modes_of(rows_[0]):
            cells: list[object] = [label(name, "" if mode == "-" else mode)]
            for space in CLASSIFIERS:
                ratios = [r[mode]["balance"][space]["max_min_ratio"] for r in window]
                cells.append(" ".join(fmt(x) for x in ratios) + f" (mean {fmt(sum(ratios) / len(ratios))})")
            counts = [r[mode]["counts"]["classifier"] for r in window]
            rarest = [min(range(len(c)), key=c.__getitem__) for c in counts]
            share = sum(c[CLASS_NAMES.index("Shirt")] / sum(c) for c in counts) / len(counts)
            cells += [", ".join(CLASS_NAMES[i] for i in rarest), f"{share:.1%}"]
            rows.append(cells)
    steps = ", ".join(f"{r['steps']:,}" for r in next(iter(curves.values()))[max(0, point - last):point])
    headers = ["runner", *[f"max/min class ({c}), last {last} evaluations" for c in CLASSIFIERS],
               "rarest class (classifier)", "shirts (classifier, mean)"]
    return (f"(evaluations at {steps} steps for the first runner; the data is 10% shirts)\n\n"
            + markdown_table(headers, rows, [False, True, True, False, True]))


def final_rows(out: Path, curves: dict[str, list[dict]], point: int, spaces: FeatureSpaces, n: int) -> list[dict]:
    rows = []
    for name, rows_ in curves.items():
        r = rows_[point - 1]
        state = load_file(str(out / name / f"g{r['point']:03d}.safetensors"))
        for mode, sample in generators(name, state).items():
            result = spaces.evaluate(sample(n))
            rows.append({"label": label(name, mode), "cpu_min": r["train_cpu_s"] / 60, "steps": r["steps"],
                         "images": r["images"], "precision": r["precision"], **result})
            print(f"  scored {rows[-1]['label']}", flush=True)
    return rows


def baseline_cache(out: Path, n: int) -> Path:
    """Where the committed model's and the real images' rows are cached: named by the committed weights'
    digest, so a report after the bundled model changed scores the new one (a cache from before doesn't match)."""
    digest = hashlib.sha256((REPO / "weights" / "fashion-mnist" / "model.safetensors").read_bytes()).hexdigest()[:12]
    return out / f"baselines_{n}_{digest}.json"


def extra_rows(spaces: FeatureSpaces, n: int) -> list[dict]:
    """The bundled model as committed, and real training images (the best a generator can do)."""
    from gandemo import load_generator

    rows = [{"label": "bundled `fashion-mnist` (committed)", **spaces.evaluate(
        generator_samples(load_generator("fashion-mnist", device="cpu"), n))}]
    images, _ = load_fashion_mnist("train")
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:n]
    rows.append({"label": "real training images", **spaces.evaluate(to_generator_range(images[idx], 32))})
    return rows


def final_tables(rows: list[dict]) -> str:
    fd_rows, other = [], []
    for r in rows:
        cpu = f"{r['cpu_min']:.1f}" if "cpu_min" in r else "-"
        steps = f"{r['steps']:,} x {r['images'] // max(r['steps'], 1)}" if "steps" in r else "-"
        per_image = f"{r['cpu_min'] * 60_000 / r['images']:.2f}" if "cpu_min" in r else "-"
        fd_rows.append([r["label"], cpu, steps, per_image, *[fmt(r["fd"][s]) for s in SPACES]])
        other.append([r["label"], *[f"{r['precision'][s]:.3f} / {r['recall'][s]:.3f}" for s in ("judge", "random conv")],
                      *[f"{fmt(r['balance'][c]['max_min_ratio'])} / {r['balance'][c]['entropy']:.3f}" for c in CLASSIFIERS]])
    t1 = markdown_table(["generator", "CPU min", "steps x batch", "CPU ms / image", *[f"FD {s}" for s in SPACES]],
                        fd_rows, [False, True, True, True, True, True, True, True])
    t2 = markdown_table(["generator", "precision / recall (judge)", "precision / recall (random conv)",
                         "max/min class, entropy (classifier)", "max/min class, entropy (judge)"], other,
                        [False, True, True, True, True])
    return t1 + "\n\n" + t2


def grid_path(out: Path, name: str, mode: str) -> Path:
    """Where :func:`write_grids` puts a runner's sample grid for one sampling mode."""
    return out / f"grid_{label(name, mode).replace(' ', '_').replace('/', '_').replace('(', '').replace(')', '')}.png"


def write_grids(out: Path, curves: dict[str, list[dict]], point: int, bn_batches: int = 20) -> None:
    """grid_<runner>.png: seeds 0-63 of every runner's generator at the comparison point, to look at."""
    from gandemo.images import make_grid, upscale

    for name, rows_ in curves.items():
        state = load_file(str(out / name / f"g{rows_[point - 1]['point']:03d}.safetensors"))
        for mode, sample in generators(name, state, bn_batches=bn_batches).items():
            upscale(make_grid(sample(64), columns=8), 2).save(grid_path(out, name, mode))
    print(f"Sample grids (seeds 0-63): {out}/grid_*.png")


def write_comparisons(out: Path, curves: dict[str, list[dict]], point: int) -> None:
    """compare_<runner>.png: the tutorial's grid (running statistics, how gandemo samples) left, the runner's
    right, each titled with its CPU minutes; benchmarks/time_to_quality_40min.png is the bundled runner's."""
    from PIL import Image, ImageDraw

    from gandemo.lab.render import font

    minutes = {name: rows_[point - 1]["train_cpu_s"] / 60 for name, rows_ in curves.items()}
    left = Image.open(grid_path(out, "tutorial", "running stats")).convert("RGB")
    title = f"PyTorch DCGAN tutorial loop, {minutes['tutorial']:.0f} CPU min (running BN stats)"
    text = font(13)
    for name in curves:
        if name == "tutorial":
            continue
        seed = TUTORIALS.get(name, RECIPES.get(recipe_of(name), {}).get("seed", 0))
        mode = "running stats" if name in TUTORIALS else ""
        right = Image.open(grid_path(out, name, mode)).convert("RGB")
        gap, top = 16, 24
        canvas = Image.new("RGB", (left.width + gap + right.width, top + max(left.height, right.height)), "white")
        canvas.paste(left, (0, top))
        canvas.paste(right, (left.width + gap, top))
        draw = ImageDraw.Draw(canvas)
        draw.text((4, 4), title, fill="black", font=text)
        draw.text((left.width + gap + 4, 4), f"{name}, seed {seed}, "
                  f"{curves[name][point - 1]['steps']:,} steps, {minutes[name]:.0f} CPU min", fill="black", font=text)
        canvas.save(out / f"compare_{name.replace('/', '_')}.png")
    print(f"Side by side with the tutorial: {out}/compare_*.png")


def report(args: argparse.Namespace) -> None:
    out = Path(args.out)
    curves = read_curves(out, list(args.runners))
    if not curves:
        raise SystemExit(f"no curves of {', '.join(args.runners)} in {out}")
    point = min(len(rows) for rows in curves.values())
    print(f"\n## Time to quality, Fashion-MNIST 32 px\n\n{machine_facts()}")
    if "tutorial" not in curves:  # a runner and its EMA shadows (--ema-shadows), one training: compared at its end
        print(f"No tutorial among {', '.join(curves)}: the generators are compared at their last common evaluation, "
              f"{point} ({next(iter(curves.values()))[point - 1]['steps']:,} steps).\n")
    else:
        common = min(rows[point - 1]["train_cpu_s"] for rows in curves.values()) / 60
        speed = ("computes bfloat16 natively, so the Trainer runs bfloat16 autocast and each image costs it less CPU "
                 "than the float32 tutorial loop. On CPUs without native bfloat16 the per-step speed is the same as "
                 "the tutorial's" if native_bfloat16(torch.device("cpu")) else
                 "has no native bfloat16: the Trainer runs float32 like the tutorial and its per-step speed is the same")
        print(f"Each runner in its own process, 1 thread, started together; CPU time of training only (evaluation "
              f"excluded). Equal-CPU comparison point: evaluation {point} (~{common:.1f} CPU min each). This CPU "
              f"{speed}, so any gain must come from needing fewer steps (the 'step' columns).\n")
        print(f"### CPU minutes to reach the tutorial's FD at that point ({args.n_eval} samples per evaluation)\n")
        print(curve_table(curves, point)[0])
    print(f"\n### Class balance over the last evaluations ({args.n_eval} samples each)\n")
    print(balance_table(curves, point))
    n = args.n_final or args.n_eval
    cache = baseline_cache(out, n)
    spaces = FeatureSpaces(knn_n=2000 if args.n_final else args.knn_n) if args.n_final or not cache.exists() else None
    if args.n_final:
        rows = final_rows(out, curves, point, spaces, args.n_final)
    else:  # the numbers the runners measured at that point
        rows = [{"label": label(name, "" if mode == "-" else mode), "cpu_min": r[point - 1]["train_cpu_s"] / 60,
                 "steps": r[point - 1]["steps"], "images": r[point - 1]["images"], **r[point - 1][mode]}
                for name, r in curves.items() for mode in modes_of(r[0])]
    if not cache.exists():
        cache.write_text(json.dumps(extra_rows(spaces, n)))
    rows += json.loads(cache.read_text())
    print(f"\n### At equal CPU time, {n:,} samples each (FD to the 10,000 test images; lower is better)\n")
    print(final_tables(rows))
    print("\nFD columns: the project's CNN classifier (`benchmarks/fashion_classifier`), the separately trained "
          "pixel-MLP judge (`benchmarks/fashion_judge`), an untrained random conv net (seed 0), pixel PCA (64 "
          f"components of 20,000 training images). Precision / recall: k-NN (k=3) on {2000 if args.n_final else args.knn_n:,} "
          f"vs as many. Class "
          "balance: most/least frequent predicted class and normalised entropy (real data: see its row).")
    (out / "final.json").write_text(json.dumps(rows, indent=1, default=str))
    write_grids(out, curves, point, args.bn_batches)
    if "tutorial" in curves:
        write_comparisons(out, curves, point)
    busy = other_busy_processes()
    print(f"\nLoad average at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
          + (f"; busy: {'; '.join(busy)}" if busy else ""))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runners", nargs="+", default=["tutorial", "defaults", "sn-ema"], choices=RUNNERS)
    p.add_argument("--cpu-minutes", type=float, default=15.0, help="training CPU budget per runner")
    p.add_argument("--wall-minutes", type=float, default=60.0, help="each runner also stops after this wall time")
    p.add_argument("--eval-every", type=float, default=75.0, help="CPU seconds of training between evaluations")
    p.add_argument("--n-eval", type=int, default=2000, help="samples per evaluation during training")
    p.add_argument("--bn-batches", type=int, default=20, help="a recipe's batch-norm statistics are re-estimated "
                   "over this many batches of 256 of its samples before each evaluation during training")
    p.add_argument("--n-final", type=int, default=10000, help="samples per generator in the final table (0: use the "
                   "runners' own evaluations at the comparison point)")
    p.add_argument("--baselines-only", action="store_true", help="only score the committed model and real images "
                   "(cached in --out for the report)")
    p.add_argument("--match-steps", metavar="CURVE", help="evaluate at the steps of another run's curve.jsonl and "
                   "stop at its last, whatever the CPU time (for a machine slower than that run's)")
    p.add_argument("--ema-shadows", type=float, nargs="+", default=[], metavar="DECAY",
                   help="recipes: also keep EMAs of G with these decays (the same training seen through other averages), "
                   "each evaluated as the runner 'RUNNER/emaDECAY'")
    p.add_argument("--resume", action="store_true", help="go on from each runner's last evaluation point in --out "
                   "(Trainer runners only; give the same options as the interrupted run)")
    p.add_argument("--knn-n", type=int, default=1000, help="points per set for k-NN precision/recall while training")
    p.add_argument("--reference-n", type=int, default=10000, help="test images whose statistics the samples are "
                   "compared with while training (all 10,000 by default; fewer is faster and noisier)")
    p.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "gandemo-ttq"))
    p.add_argument("--report-only", action="store_true", help="only print the tables of a finished run in --out")
    p.add_argument("--worker", choices=RUNNERS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if any(not 0 <= d < 1 for d in args.ema_shadows):
        p.error("--ema-shadows: each decay must be at least 0 and below 1 (0 = G itself)")
    if args.resume and (tutorials := [n for n in ([args.worker] if args.worker else args.runners) if n in TUTORIALS]):
        p.error(f"--resume: the tutorial loop ({', '.join(tutorials)}) keeps no resume points; run it without --resume")
    if args.worker:
        worker(args)
        return
    set_threads(1)
    if args.baselines_only:
        n = args.n_final or args.n_eval
        Path(args.out).mkdir(parents=True, exist_ok=True)
        rows = extra_rows(FeatureSpaces(knn_n=2000 if args.n_final else args.knn_n), n)
        baseline_cache(Path(args.out), n).write_text(json.dumps(rows))
        return
    if not args.report_only:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        procs = []
        for name in args.runners:
            cmd = [sys.executable, __file__, "--worker", name, *[f"--{k.replace('_', '-')}={getattr(args, k)}" for k in (
                "cpu_minutes", "wall_minutes", "eval_every", "n_eval", "bn_batches", "knn_n", "reference_n", "out")]]
            cmd += ["--match-steps", args.match_steps] if args.match_steps else []
            cmd += ["--ema-shadows", *map(str, args.ema_shadows)] if args.ema_shadows else []
            cmd += ["--resume"] if args.resume else []
            log = (Path(args.out) / f"{name}.log").open("a" if args.resume else "w")
            procs.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))
        for name, proc, log in procs:
            code = proc.wait()
            log.close()
            print(f"{name}: exit {code}", flush=True)
    report(args)


if __name__ == "__main__":
    main()
