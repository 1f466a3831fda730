"""Train the bundled Fashion-MNIST generator (weights/fashion-mnist).

    python scripts/train_bundled.py --out weights/fashion-mnist   # 3500 steps, ~45 min on 1 CPU core

Seeded and deterministic on a given machine and thread count. Reads Debian's
``dataset-fashion-mnist`` files, or lets torchvision download the data elsewhere.
The recipe is the DCGAN paper's (Adam 2e-4, beta1 0.5, batch 128) with two small,
well-known stabilisers: one-sided label smoothing (real label 0.9) and an exponential
moving average of the generator's weights, whose batch-norm statistics are re-estimated
before export.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gandemo.datasets import load_fashion_mnist, to_generator_range  # noqa: E402
from gandemo.gan.checkpoint import model_card, save_generator  # noqa: E402
from gandemo.gan.latent import latents_for_seeds  # noqa: E402
from gandemo.gan.models import DCGANDiscriminator, DCGANGenerator  # noqa: E402
from gandemo.images import make_grid, upscale  # noqa: E402


@torch.no_grad()
def update_ema(ema: torch.nn.Module, live: torch.nn.Module, decay: float) -> None:
    for pe, pl in zip(ema.parameters(), live.parameters()):
        pe.lerp_(pl, 1 - decay)


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="weights/fashion-mnist")
    p.add_argument("--steps", type=int, default=3500)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--latent-dim", type=int, default=100)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--preview-dir", default=None, help="write a sample grid of the EMA generator every 1000 steps")
    args = p.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    images, _ = load_fashion_mnist("train")
    data = to_generator_range(images, 32)  # (60000, 1, 32, 32), preprocessed once
    n = data.shape[0]

    G = DCGANGenerator(image_size=32, channels=1, latent_dim=args.latent_dim, width=args.width)
    D = DCGANDiscriminator(image_size=32, channels=1, width=args.width)
    G_ema = copy.deepcopy(G).eval()
    opt_g = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.999))
    real_label = torch.full((args.batch,), 0.9)
    fake_label = torch.zeros(args.batch)
    ones = torch.ones(args.batch)

    t0 = time.time()
    perm = torch.randperm(n)
    cursor = 0
    for step in range(1, args.steps + 1):
        if cursor + args.batch > n:
            perm, cursor = torch.randperm(n), 0
        real = data[perm[cursor: cursor + args.batch]]
        cursor += args.batch

        # Phase 1: the discriminator learns to tell real (label 0.9) from generated (label 0).
        z = torch.randn(args.batch, args.latent_dim)
        fake = G(z)
        d_real, d_fake = D(real), D(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(d_real, real_label) + F.binary_cross_entropy_with_logits(d_fake, fake_label)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        # Phase 2: the generator learns to make D say "real"; only G's optimiser steps.
        loss_g = F.binary_cross_entropy_with_logits(D(fake), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        update_ema(G_ema, G, args.ema if step > 500 else 0.0)

        if step % args.log_every == 0 or step == args.steps:
            rate = step * args.batch / (time.time() - t0)
            print(
                f"step {step}/{args.steps}  loss_d {loss_d.item():.3f}  loss_g {loss_g.item():.3f}  "
                f"D(x) {torch.sigmoid(d_real).mean():.2f}  D(G(z)) {torch.sigmoid(d_fake).mean():.2f}  {rate:.0f} img/s",
                flush=True,
            )
        if args.preview_dir and step % 1000 == 0:
            preview = copy.deepcopy(G_ema)
            recompute_batchnorm(preview, args.latent_dim, batches=10)
            with torch.no_grad():
                grid = make_grid(preview(latents_for_seeds(list(range(64)), args.latent_dim)), columns=8)
            Path(args.preview_dir).mkdir(parents=True, exist_ok=True)
            upscale(grid, 2).save(Path(args.preview_dir) / f"step{step:06d}.png")

    recompute_batchnorm(G_ema, args.latent_dim)
    with torch.no_grad():
        grid = make_grid(G_ema(latents_for_seeds(list(range(64)), args.latent_dim)), columns=8, padding=0)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "log_every", "threads", "preview_dir")}
    card = model_card(
        title="Fashion-MNIST DCGAN (gandemo bundled model)",
        summary=(
            "A small DCGAN that draws 32x32 grayscale clothing in the style of Fashion-MNIST "
            "(T-shirts, trousers, pullovers, dresses, coats, sandals, shirts, sneakers, bags, ankle boots). "
            "Grid: seeds 0-63."
        ),
        config=G_ema.config if hasattr(G_ema, "config") else {"image_size": 32, "channels": 1, "latent_dim": args.latent_dim, "width": args.width},
        datasets=["zalando-datasets/fashion_mnist"],
        sections={
            "Training": (
                "Trained by `scripts/train_bundled.py` on the 60,000 Fashion-MNIST training images "
                "(28x28, zero-padded to 32x32) with BCE-with-logits, one-sided label smoothing (0.9), "
                "Adam (beta1 0.5) and an EMA of the generator weights (batch-norm statistics re-estimated "
                "for the EMA weights).\n\n```json\n" + json.dumps(settings, indent=2) + "\n```\n\n"
                f"Wall time: {time.time() - t0:.0f} s on CPU ({torch.get_num_threads()} thread(s)). Reproduce with "
                "`python scripts/train_bundled.py --out weights/fashion-mnist` (same seed; results are deterministic "
                "on a given machine and torch version)."
            ),
            "Data licence": "Fashion-MNIST is (c) Zalando SE, released under the MIT licence.",
        },
    )
    save_generator(G_ema, args.out, card=card, sample_grid=upscale(grid, 2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
