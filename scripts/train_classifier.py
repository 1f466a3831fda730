"""Train the small Fashion-MNIST classifier used to evaluate generators (benchmarks/fashion_classifier).

    python scripts/train_classifier.py --epochs 6 --out benchmarks/fashion_classifier

Seeded and deterministic for a given machine, torch version and thread count (default: 1 thread).
Trains on the 60,000 training images, padded to 32x32 in [-1, 1] exactly like the generator's
training data, with light augmentation (random translation of up to +-2 px, horizontal flips),
AdamW with a one-cycle learning-rate schedule and label smoothing, then reports accuracy on the
10,000 test images and writes model.safetensors, config.json and README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gandemo.datasets import CLASS_NAMES, load_fashion_mnist, to_generator_range  # noqa: E402
from gandemo.evaluation import FashionClassifier, save_classifier  # noqa: E402

MAX_SHIFT = 2


def augment(x: torch.Tensor, rng: torch.Generator, max_shift: int = MAX_SHIFT) -> torch.Tensor:
    """Random translation by up to ``max_shift`` px (background -1 fills in) and random horizontal flips."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=rng)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=rng)
    rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None]  # (n, 1, h, 1)
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :]  # (n, 1, 1, w)
    out = padded[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    flip = torch.rand(n, generator=rng) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


@torch.no_grad()
def accuracy(model: FashionClassifier, x: torch.Tensor, y: torch.Tensor) -> tuple[float, list[float]]:
    model.eval()
    pred = torch.cat([model(chunk).argmax(1) for chunk in x.split(1000)])
    per_class = [float((pred[y == c] == c).float().mean()) for c in range(model.num_classes)]
    return float((pred == y).float().mean()), per_class


def readme(config: dict, per_class: list[float], args: argparse.Namespace, seconds: float, weights: Path) -> str:
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    size_kb = weights.stat().st_size / 1024
    rows = "\n".join(f"| {name} | {acc:.1%} |" for name, acc in zip(CLASS_NAMES, per_class, strict=True))
    cmd = (f"python scripts/train_classifier.py --epochs {args.epochs} --batch {args.batch} --lr {args.lr} "
           f"--seed {args.seed} --threads {args.threads} --out {args.out}")
    return f"""# Fashion-MNIST evaluation classifier

A small CNN (`gandemo.evaluation.FashionClassifier`, {config['parameters']:,} parameters,
{size_kb:.0f} KB) that `scripts/evaluate_generator.py` uses to score generators: class coverage
and confidence from its predictions, and a Fréchet distance in its {config['feature_dim']}-d
penultimate feature space. It is a measuring instrument, not a state-of-the-art classifier.

**Test accuracy: {config['test_accuracy']:.2%}** on the 10,000 Fashion-MNIST test images.

## Input

32x32, one channel, values in [-1, 1]: Fashion-MNIST's 28x28 images zero-padded (black = -1) by
`gandemo.datasets.to_generator_range`, which is exactly what the bundled generator is trained on
and produces.

## Architecture

Three stages of 3x3 convolution -> batch norm -> ReLU -> 2x2 max-pool (widths {config['widths']}),
flatten, linear -> ReLU (the {config['feature_dim']}-d embedding used for the Fréchet distance),
dropout, linear -> {config['num_classes']} logits.

## Training

{args.epochs} epochs over the 60,000 training images, batch {args.batch}, AdamW with a one-cycle
schedule (peak learning rate {args.lr}), weight decay {args.weight_decay}, label smoothing
{args.label_smoothing}; augmentation: random translation of up to +-{MAX_SHIFT} px and random
horizontal flips. Seed {args.seed}, {args.threads} torch thread(s); {seconds:.0f} s on
{platform.machine()} CPU (torch {torch.__version__}).

Reproduce (deterministic on the same machine, torch version and thread count):

```bash
{cmd}
```

## Per-class test accuracy

| class | accuracy |
|---|---|
{rows}

`model.safetensors` SHA-256: `{digest}`

Fashion-MNIST is (c) Zalando SE, released under the MIT licence.
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/fashion_classifier")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--label-smoothing", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (results depend on it)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    train_x, train_y = load_fashion_mnist("train")
    test_x, test_y = load_fashion_mnist("test")
    train_x, test_x = to_generator_range(train_x, 32), to_generator_range(test_x, 32)

    model = FashionClassifier(image_size=32, channels=1, num_classes=len(CLASS_NAMES))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    n = train_x.shape[0]
    steps_per_epoch = n // args.batch  # the last partial batch is dropped (it would be tiny for batch norm)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(n, generator=rng)
        total, correct, loss_sum = 0, 0, 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * args.batch:(i + 1) * args.batch]
            x, y = augment(train_x[idx], rng), train_y[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
        test_acc, _ = accuracy(model, test_x, test_y)
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {loss_sum / total:.4f}, train acc {correct / total:.4f}, "
              f"test acc {test_acc:.4f} ({time.time() - t0:.0f} s)", flush=True)

    test_acc, per_class = accuracy(model, test_x, test_y)
    seconds = time.time() - t0
    out = Path(args.out)
    extra = {
        "class_names": list(CLASS_NAMES),
        "input": "32x32x1 in [-1, 1]: Fashion-MNIST zero-padded by gandemo.datasets.to_generator_range",
        "test_accuracy": round(test_acc, 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "training": {"epochs": args.epochs, "batch": args.batch, "lr": args.lr, "weight_decay": args.weight_decay,
                     "label_smoothing": args.label_smoothing, "seed": args.seed, "threads": args.threads,
                     "augmentation": f"translate +-{MAX_SHIFT} px, horizontal flip", "seconds": round(seconds)},
    }
    save_classifier(model, out, extra)
    config = json.loads((out / "config.json").read_text())
    (out / "README.md").write_text(readme(config, per_class, args, seconds, out / "model.safetensors"))
    print(f"test accuracy {test_acc:.4f}; wrote {out} in {seconds:.0f} s")


if __name__ == "__main__":
    main()
