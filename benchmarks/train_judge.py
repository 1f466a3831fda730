"""Train the second, independent Fashion-MNIST judge (benchmarks/fashion_judge).

    python benchmarks/train_judge.py                      # ~1-2 CPU minutes, 1 thread

``gandemo.evaluation_spaces.FashionJudge``: a pixel MLP (1024 -> 256 -> 128 -> 10, ReLU, dropout),
built unlike the project's CNN classifier (``scripts/train_classifier.py``: convolutions, batch
norm, max-pooling) and trained by this separate script with its own recipe (plain Adam, random
shifts of up to 2 px, no flips, no label smoothing). It only ever evaluates generators; no
training of a generator reads it. Seeded: the same machine, torch version and thread count give
the same weights.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gandemo.datasets import CLASS_NAMES, load_fashion_mnist, to_generator_range  # noqa: E402
from gandemo.evaluation_spaces import FashionJudge, judge_accuracy, save_judge  # noqa: E402


def shift(x: torch.Tensor, rng: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Every image moved by up to ``max_shift`` px in x and y (background -1 fills in)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=rng)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=rng)
    rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :]
    return padded[torch.arange(n)[:, None, None, None], torch.zeros(1, 1, 1, 1, dtype=torch.long), rows, cols]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "fashion_judge"))
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = torch.Generator().manual_seed(args.seed)
    t0 = time.process_time()
    x_train = to_generator_range(load_fashion_mnist("train")[0], 32)
    y_train = load_fashion_mnist("train")[1]
    x_test, y_test = to_generator_range(load_fashion_mnist("test")[0], 32), load_fashion_mnist("test")[1]
    model = FashionJudge()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs * (len(x_train) // args.batch))
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=rng)
        for i in range(0, len(order) - args.batch + 1, args.batch):
            idx = order[i: i + args.batch]
            loss = F.cross_entropy(model(shift(x_train[idx], rng)), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.3f}, test accuracy "
              f"{judge_accuracy(model, x_test, y_test):.2%}", flush=True)
    model.eval()
    acc = judge_accuracy(model, x_test, y_test)
    with torch.no_grad():
        pred = torch.cat([model(c).argmax(1) for c in x_test.split(1000)])
    per_class = {name: float((pred[y_test == c] == c).float().mean()) for c, name in enumerate(CLASS_NAMES)}
    params = sum(p.numel() for p in model.parameters())
    save_judge(model, args.out, {"test_accuracy": round(acc, 4), "parameters": params, "class_names": list(CLASS_NAMES),
                                 "per_class_accuracy": {k: round(v, 4) for k, v in per_class.items()}})
    digest = hashlib.sha256((Path(args.out) / "model.safetensors").read_bytes()).hexdigest()[:16]
    print(f"test accuracy {acc:.2%}; {params:,} parameters; {time.process_time() - t0:.0f} CPU s; "
          f"model.safetensors sha256 {digest}...; saved {args.out}")


if __name__ == "__main__":
    main()
