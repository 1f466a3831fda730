"""Train the bundled Fashion-MNIST generator (weights/fashion-mnist).

    python scripts/train_bundled.py --threads 1 --out weights/fashion-mnist   # ~40 CPU minutes

The recipe (``BUNDLED_RECIPE``) is the DCGAN paper's (batch-norm networks, plain BCE, Adam 2e-4 /
beta1 0.5, no augmentation) trained by gandemo's own ``Trainer`` (bfloat16 autocast on CPUs that
compute it natively, float32 elsewhere) with batch 64 and an exponential moving average of the
generator's weights over about 100 steps (decay 0.99), whose batch-norm statistics are re-estimated before
export. It is the ``bn-ema99`` runner of ``benchmarks/time_to_quality.py``, which compares it with the PyTorch
DCGAN tutorial's loop at equal CPU time (seed 1; of seven runs of 40 CPU minutes of this recipe and its variants,
the one with the most even classes that is also ahead of the tutorial in every Fréchet distance, precision and
recall, see benchmarks/RESULTS.md). ``--seed`` and
``--steps`` default to that run's seed and the steps it made in its 40 CPU minutes, so this script writes the
very generator that benchmark scored (tests/test_bundled.py checks the two agree step for step).

Seeded and deterministic on a given machine, precision and thread count. Reads Debian's
``dataset-fashion-mnist`` files, or lets torchvision download the data set elsewhere.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gandemo.datasets import load_fashion_mnist  # noqa: E402
from gandemo.gan.checkpoint import model_card, save_generator  # noqa: E402
from gandemo.gan.latent import latents_for_seeds  # noqa: E402
from gandemo.gan.models import DCGANGenerator  # noqa: E402
from gandemo.gan.train import TrainConfig, Trainer  # noqa: E402
from gandemo.images import make_grid, upscale  # noqa: E402

# TrainConfig settings on top of 32 px, 1 channel: every few-image remedy of the app's defaults off (60,000
# images need no augmentation), the DCGAN paper's batch-norm discriminator and BCE, and an EMA of G. The
# sixth and seventh sessions' bundled models had an EMA over about 1,000 steps (decay 0.999)...
DCGAN_EMA_RECIPE: dict[str, Any] = {
    "batch_size": 64, "diffaugment": "", "mirror": False, "label_smoothing": 1.0, "spectral_norm": False,
    "d_skip_threshold": 0.0, "ema_decay": 0.999, "r1_gamma": 0.0, "loss": "bce",
}
# ...the bundled model since the eighth session one over about 100 (0.99): its classes are more even (RESULTS)
BUNDLED_RECIPE: dict[str, Any] = {**DCGAN_EMA_RECIPE, "ema_decay": 0.99}
# the seed of benchmarks/time_to_quality.py's bn-ema99 runner and the steps it reached in 40 CPU minutes
# (1 thread, bfloat16, this project's 2-core Xeon with AVX-512 BF16), see benchmarks/RESULTS.md
DEFAULT_SEED = 1
DEFAULT_STEPS = 15_189


def bundled_config(steps: int = DEFAULT_STEPS, seed: int = DEFAULT_SEED) -> TrainConfig:
    """The recipe's TrainConfig: checkpoints only at the end, a preview every 500 steps."""
    return TrainConfig(image_size=32, channels=1, steps=steps, seed=seed, preview_every=500, checkpoint_every=0,
                       checkpoint_minutes=0.0, **BUNDLED_RECIPE)


def fashion_mnist_u8() -> torch.Tensor:
    """The 60,000 training images as uint8 (N, 1, 32, 32), zero-padded from 28 px."""
    images, _ = load_fashion_mnist("train")
    return torch.nn.functional.pad(images, (2, 2, 2, 2))[:, None].contiguous()


@torch.no_grad()
def recompute_batchnorm(gen: torch.nn.Module, latent_dim: int, batches: int = 50, batch: int = 256) -> None:
    """Replace running BN statistics with exact averages under the generator's own weights
    (the EMA weights differ from the live ones whose statistics were tracked)."""
    for m in gen.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    gen.train()
    g = torch.Generator().manual_seed(1234)
    for _ in range(batches):
        gen(torch.randn(batch, latent_dim, generator=g))
    for m in gen.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
    gen.eval()


def export(trainer: Trainer, bn_batches: int = 50) -> torch.nn.Module:
    """A CPU float32 copy of the trainer's EMA generator with batch-norm statistics re-estimated over
    ``bn_batches`` batches of its own samples."""
    gen = copy.deepcopy(trainer.G_ema).float().cpu().requires_grad_(False)
    recompute_batchnorm(gen, trainer.config.latent_dim, batches=bn_batches)
    return gen


def train(steps: int, seed: int, run_dir: Path, log_every: int = 500, preview_dir: Path | None = None) -> Trainer:
    """Train the recipe for ``steps`` steps; the Trainer (its run folder in ``run_dir``)."""
    trainer = Trainer(fashion_mnist_u8(), bundled_config(steps, seed), run_dir, device="cpu")
    t0 = time.time()
    for event in trainer.train():
        if event.kind in ("step", "preview") and event.losses and (event.step % log_every == 0 or event.step == steps):
            print(f"step {event.step}/{steps}  loss_d {event.losses['loss_d']:.3f}  loss_g {event.losses['loss_g']:.3f}  "
                  f"D(x) {event.losses['d_real']:.2f}  D(G(z)) {event.losses['d_fake']:.2f}  "
                  f"{event.step * trainer.config.batch_size / (time.time() - t0):.0f} img/s", flush=True)
        if preview_dir is not None and event.preview is not None:
            preview_dir.mkdir(parents=True, exist_ok=True)
            event.preview.save(preview_dir / f"step{event.step:06d}.png")
        for h in event.health:
            print(f"  [{h.level}] step {event.step}: {h.text}", flush=True)
    return trainer


def save_bundled(gen: torch.nn.Module, out: str | Path, steps: int, seed: int, precision: str, cpu_s: float,
                 wall_s: float | None, threads: int) -> None:
    """Write the exported generator as weights/fashion-mnist: config, weights, card and sample grid."""
    with torch.no_grad():
        grid = make_grid(gen(latents_for_seeds(list(range(64)), gen.latent_dim)), columns=8, padding=0)
    settings = {"steps": steps, "seed": seed, "image_size": 32, "channels": 1, **BUNDLED_RECIPE}
    card = model_card(
        title="Fashion-MNIST DCGAN (gandemo bundled model)",
        summary=(
            "A small DCGAN that draws 32x32 grayscale clothing in the style of Fashion-MNIST "
            "(T-shirts, trousers, pullovers, dresses, coats, sandals, shirts, sneakers, bags, ankle boots). "
            "Grid: seeds 0-63."
        ),
        config={"image_size": 32, "channels": 1, "latent_dim": gen.latent_dim, "width": 64},
        datasets=["zalando-datasets/fashion_mnist"],
        sections={
            "Training": (
                "Trained by `scripts/train_bundled.py` with gandemo's `Trainer` on the 60,000 Fashion-MNIST "
                "training images (28x28, zero-padded to 32x32): the DCGAN paper's recipe (batch-norm "
                f"networks, BCE, Adam 2e-4 / beta1 0.5, no augmentation), batch {BUNDLED_RECIPE['batch_size']}, and "
                f"an exponential moving average of the generator's weights (decay {BUNDLED_RECIPE['ema_decay']}) "
                f"whose batch-norm statistics are re-estimated before export. Precision: {precision}.\n\n```json\n" +
                json.dumps(settings, indent=2) +
                "\n```\n\n"
                f"{cpu_s / 60:.0f} CPU minutes" + (f" ({wall_s:.0f} s wall)" if wall_s is not None else "") +
                f" on {threads} thread(s). Reproduce with "
                f"`python scripts/train_bundled.py --threads 1 --steps {steps} --out weights/fashion-mnist` (same "
                "seed; deterministic on a given machine, precision and torch version)."
            ),
            "Data licence": "Fashion-MNIST is (c) Zalando SE, released under the MIT licence.",
        },
    )
    save_generator(gen, out, card=card, sample_grid=upscale(grid, 2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="weights/fashion-mnist")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--log-every", type=int, default=500)
    p.add_argument("--preview-dir", default=None, help="keep the live previews (every 500 steps) here")
    p.add_argument("--from-benchmark", nargs=2, metavar=("CURVE_JSONL", "POINT"), default=None,
                   help="instead of training, export the EMA generator a bn-ema runner of benchmarks/time_to_quality.py "
                        "saved at evaluation POINT (its curve.jsonl; the g<POINT>.safetensors beside it): the same "
                        "computation as training --steps <its steps> --seed <its seed> here, step for step "
                        "(tests/test_bundled.py); give --seed for the card")
    args = p.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.from_benchmark:
        curve, point = Path(args.from_benchmark[0]), int(args.from_benchmark[1])
        row = next(r for r in map(json.loads, curve.read_text().splitlines()) if r["point"] == point)
        gen = DCGANGenerator(32, 1, 100, 64)
        gen.load_state_dict(load_file(str(curve.parent / f"g{point:03d}.safetensors")))
        gen.requires_grad_(False)
        recompute_batchnorm(gen, gen.latent_dim)
        # the benchmark counts training CPU time only (its runners share the machine): no wall time
        steps, precision, cpu, wall, threads = row["steps"], row["precision"], row["train_cpu_s"], None, 1
    else:
        t0, cpu0 = time.time(), time.process_time()
        with tempfile.TemporaryDirectory(prefix="gandemo-bundled-") as scratch:
            trainer = train(args.steps, args.seed, Path(scratch) / "run", args.log_every,
                            Path(args.preview_dir) if args.preview_dir else None)
            precision = str(trainer.amp_dtype).removeprefix("torch.") + " autocast" if trainer.amp else "float32"
            gen = export(trainer)
        steps, cpu, threads = args.steps, time.process_time() - cpu0, torch.get_num_threads()
        wall: float | None = time.time() - t0
    save_bundled(gen, args.out, steps, args.seed, precision, cpu, wall, threads)
    print(f"saved {args.out} ({steps} steps, {precision}, {cpu / 60:.1f} CPU min)")


if __name__ == "__main__":
    main()
