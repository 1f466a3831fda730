"""Score generators with the Fashion-MNIST classifier in benchmarks/fashion_classifier.

    python scripts/evaluate_generator.py                      # bundled fashion-mnist + baselines
    python scripts/evaluate_generator.py --model path/or/repo-id --model other -n 10000
    python scripts/evaluate_generator.py --update-card weights/fashion-mnist/README.md

For every generator, ``n`` samples from seeds 0..n-1 (the app's seed convention) are classified;
two baselines put the numbers in context: ``n`` random real training images (the best a
generator can hope for) and an untrained DCGAN (DCGAN initialisation, seeded). Prints a markdown
table: Fréchet distance (FD) in the classifier's feature space to the 10,000 test images, classes
covered (>= 1% of samples), normalised entropy and min/max share of the predicted classes, and
the mean confidence (max softmax). ``--update-card`` inserts (before "## Data licence" if present) or
replaces an "## Evaluation" section (``--section``) in the given markdown files.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gandemo.datasets import load_fashion_mnist, to_generator_range  # noqa: E402
from gandemo.evaluation import (  # noqa: E402
    DEFAULT_CLASSIFIER_DIR,
    evaluate_images,
    generator_samples,
    load_classifier,
    reference_features,
    replace_markdown_section,
    results_table,
)
from gandemo.gan.models import DCGANGenerator  # noqa: E402
from gandemo.generator import Generator, load_generator  # noqa: E402
from gandemo.hub import bundled_dir  # noqa: E402

BUNDLED = "fashion-mnist"
REAL_LABEL = "real training images"
UNTRAINED_LABEL = "untrained DCGAN"


def untrained_generator(seed: int) -> Generator:
    """DCGANGenerator(32, 1, 100, 64) straight after the DCGAN initialisation, seeded."""
    torch.manual_seed(seed)
    return Generator(DCGANGenerator(32, 1, 100, 64), source=UNTRAINED_LABEL, layout="gandemo",
                     device=torch.device("cpu"))


def real_images(n: int, seed: int) -> torch.Tensor:
    images, _ = load_fashion_mnist("train")
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    return to_generator_range(images[idx], 32)


def measurement_note(args: argparse.Namespace, classifier_config: dict[str, Any], command: str) -> str:
    acc = classifier_config.get("test_accuracy")
    acc_text = f" ({acc:.1%} test accuracy)" if isinstance(acc, float) else ""
    return (
        f"Measured with `scripts/evaluate_generator.py` and the small Fashion-MNIST classifier in "
        f"`benchmarks/fashion_classifier`{acc_text}: {args.n:,} samples per generator (seeds "
        f"{args.seed}-{args.seed + args.n - 1}, no truncation) are classified at 32x32 in [-1, 1]. "
        f"*FD* is the Fréchet distance between Gaussians fitted to the classifier's "
        f"{classifier_config.get('feature_dim', 128)}-d penultimate features of the samples and of the "
        f"10,000 test images (FID's formula in a Fashion-MNIST feature space; lower is better, only "
        f"comparable at equal sample sizes). *Classes covered* counts predicted classes with at least "
        f"{args.min_share:.0%} of the samples; *entropy* is the entropy of the predicted-class "
        f"histogram divided by log 10 (1 = perfectly balanced, like the data); *mean confidence* is the "
        f"mean max softmax probability: broken shapes score low, but it is no quality signal on its own, "
        f"since the classifier is confidently wrong far from the data (an untrained DCGAN's flat grey images "
        f"all land in one class with high confidence); read it together with FD. Baselines: {args.n:,} random real "
        f"training images, and an untrained DCGAN (same architecture, DCGAN initialisation, seed "
        f"{args.seed}, eval mode).\n\n```bash\n{command}\n```"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", default=None, metavar="SRC",
                   help=f"generator source (repeatable; default: the bundled '{BUNDLED}' when installed)")
    p.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER_DIR))
    p.add_argument("-n", "--n", type=int, default=10000, help="samples per row")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-share", type=float, default=0.01, help="share of samples for a class to count as covered")
    p.add_argument("--no-baselines", action="store_true", help="leave out the real-image and untrained rows")
    p.add_argument("--update-card", action="append", default=[], metavar="README",
                   help="insert/replace the evaluation section in this markdown file (repeatable)")
    p.add_argument("--section", default="Evaluation", help="heading of the section --update-card writes")
    p.add_argument("--json", default=None, help="also write the full results (with class histograms) here")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = p.parse_args()
    if args.n < 2:
        p.error("-n must be at least 2")
    if args.threads:
        torch.set_num_threads(args.threads)

    models = args.model
    if models is None:
        models = [BUNDLED] if (bundled_dir() / BUNDLED / "config.json").is_file() else []
        if not models:
            print(f"note: no bundled '{BUNDLED}' generator installed; only the baselines are evaluated", file=sys.stderr)

    t0 = time.time()
    classifier = load_classifier(args.classifier)
    classifier_config = json.loads((Path(args.classifier) / "config.json").read_text())
    reference = reference_features(classifier)
    print(f"classifier + test-set features: {time.time() - t0:.1f} s", file=sys.stderr)

    jobs: list[tuple[str, Any]] = [(m, m) for m in models]
    if not args.no_baselines:
        jobs += [(REAL_LABEL, None), (UNTRAINED_LABEL, "untrained")]
    rows: list[dict[str, Any]] = []
    for label, what in jobs:
        t = time.time()
        if what is None:
            images = real_images(args.n, args.seed)
        else:
            gen = untrained_generator(args.seed) if what == "untrained" else load_generator(what)
            if (gen.channels, gen.image_size) != (classifier.channels, classifier.image_size):
                print(f"skipping {label}: {gen.channels}x{gen.image_size}px output, the classifier needs "
                      f"{classifier.channels}x{classifier.image_size}px", file=sys.stderr)
                continue
            images = generator_samples(gen, args.n, args.seed)
        row = {"source": f"`{label}`" if what not in (None, "untrained") else label,
               **evaluate_images(classifier, images, reference, args.min_share)}
        row["seconds"] = round(time.time() - t, 1)
        rows.append(row)
        print(f"{label}: FD {row['fd']:.2f}, {row['classes_covered']} classes, entropy {row['entropy']:.3f}, "
              f"confidence {row['confidence']:.3f} ({row['seconds']} s)", file=sys.stderr)

    table = results_table(rows)
    print(table)
    print(f"total: {time.time() - t0:.0f} s", file=sys.stderr)

    command = "python scripts/evaluate_generator.py " + " ".join(
        [f"--model {m}" for m in (args.model or [])] + ([f"-n {args.n}"] if args.n != 10000 else [])
        + ([f"--seed {args.seed}"] if args.seed else [])).strip()
    if args.json:
        Path(args.json).write_text(json.dumps({"n": args.n, "seed": args.seed, "rows": rows}, indent=2) + "\n")
    for card in args.update_card:
        path = Path(card)
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        body = table + "\n\n" + measurement_note(args, classifier_config, command.strip())
        path.write_text(replace_markdown_section(text, args.section, body, before="Data licence"), encoding="utf-8")
        print(f"updated {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
