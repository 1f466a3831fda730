"""Evaluating generators with a small Fashion-MNIST classifier.

The classifier (``FashionClassifier``, trained by ``scripts/train_classifier.py`` and stored in
``benchmarks/fashion_classifier/``) sees 32x32 one-channel images in [-1, 1], i.e. Fashion-MNIST
padded by ``gandemo.datasets.to_generator_range`` or a generator's raw output. From it we get:

* **class coverage**: the histogram of predicted classes, how many classes get at least
  ``min_share`` of the samples, its normalised entropy, the smallest / largest class share and
  the KL divergence to the uniform distribution (Fashion-MNIST's classes are balanced);
* **confidence**: the mean maximum softmax probability. Broken, blobby shapes give low
  confidence even when the histogram looks fine; far from the data the classifier can be
  confidently wrong, though (an untrained DCGAN's flat grey images all get one class with
  high confidence), so read it together with the FD;
* **Fréchet distance (FD)** between Gaussians fitted to the classifier's penultimate features
  of two image sets (FID's formula, in a feature space that knows clothing rather than
  ImageNet). Values are only comparable for the same classifier and sample sizes.

    from gandemo import load_generator
    from gandemo.evaluation import load_classifier, evaluate_generator, reference_features
    clf = load_classifier()
    ref = reference_features(clf)                   # Fashion-MNIST test set
    evaluate_generator(load_generator("fashion-mnist"), clf, n=10000, reference_feats=ref)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .gan.latent import latents_for_seeds

DEFAULT_CLASSIFIER_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "fashion_classifier"
ARCHITECTURE = "gandemo-fashion-cnn"
CONFIG_KEYS = ("image_size", "channels", "num_classes", "widths", "feature_dim")
BATCH = 500


class FashionClassifier(nn.Module):
    """Three 3x3 conv -> batch norm -> ReLU -> 2x2 max-pool stages, a ``feature_dim`` embedding, logits.

    Input: (N, channels, image_size, image_size) in [-1, 1]. ``forward`` returns logits;
    ``features`` returns the (post-ReLU) penultimate embedding together with the logits.
    """

    def __init__(self, image_size: int = 32, channels: int = 1, num_classes: int = 10,
                 widths: Sequence[int] = (16, 32, 64), feature_dim: int = 128, dropout: float = 0.3):
        super().__init__()
        if image_size % 2 ** len(widths):
            raise ValueError(f"image_size {image_size} is not divisible by 2**{len(widths)}")
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.num_classes = int(num_classes)
        self.widths = tuple(int(w) for w in widths)
        self.feature_dim = int(feature_dim)
        layers: list[nn.Module] = []
        c_in = self.channels
        for w in self.widths:
            layers += [nn.Conv2d(c_in, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in = w
        self.body = nn.Sequential(*layers)
        side = self.image_size // 2 ** len(self.widths)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, self.feature_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def config(self) -> dict[str, Any]:
        return {"architecture": ARCHITECTURE, "image_size": self.image_size, "channels": self.channels,
                "num_classes": self.num_classes, "widths": list(self.widths), "feature_dim": self.feature_dim}

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding (N, feature_dim), logits (N, num_classes))."""
        h = self.embed(self.body(x))
        return h, self.head(self.dropout(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[1]


def save_classifier(model: FashionClassifier, folder: str | Path, extra: dict[str, Any] | None = None) -> None:
    """model.safetensors + config.json (architecture, plus ``extra`` such as class names and accuracy)."""
    save_model_folder(model, {**model.config(), **(extra or {})}, folder)


def save_model_folder(model: nn.Module, config: dict[str, Any], folder: str | Path) -> None:
    """An evaluation network's folder: its weights as model.safetensors and ``config`` as config.json."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # One metadata key only: safetensors writes several in random order, which would make files differ byte-wise.
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def read_model_folder(folder: Path, architecture: str, what: str, made_by: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config, weights) of a folder written by ``save_model_folder``, checked to hold ``architecture``;
    ``what`` and ``made_by`` (the script that trains one) complete the message when it holds none."""
    from safetensors.torch import load_file

    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(f"{folder} holds no {what} (config.json + model.safetensors); train one with {made_by}")
    config = json.loads(config_path.read_text())
    if config.get("architecture") != architecture:
        raise ValueError(f"{config_path} describes {config.get('architecture')!r}, not {architecture!r}")
    return config, load_file(str(weights_path))


def load_classifier(folder: str | Path | None = None, device: str | torch.device = "cpu") -> FashionClassifier:
    """The classifier in ``folder`` (default: the committed ``benchmarks/fashion_classifier``), in eval mode."""
    folder = Path(folder) if folder is not None else DEFAULT_CLASSIFIER_DIR
    config, state = read_model_folder(folder, ARCHITECTURE, "classifier", "scripts/train_classifier.py")
    model = FashionClassifier(**{k: config[k] for k in CONFIG_KEYS})
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


@torch.no_grad()
def embed(classifier: FashionClassifier, images: torch.Tensor, batch: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features (N, feature_dim) as float64 and softmax probabilities (N, num_classes)."""
    classifier.eval()
    device = next(classifier.parameters()).device
    feats, probs = [], []
    for chunk in images.split(batch):
        f, logits = classifier.features(chunk.to(device, torch.float32))
        feats.append(f.double().cpu())
        probs.append(F.softmax(logits.double(), dim=1).cpu())
    if not feats:
        return np.zeros((0, classifier.feature_dim)), np.zeros((0, classifier.num_classes))
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()


def class_histogram(classifier: FashionClassifier, images: torch.Tensor) -> np.ndarray:
    """How many images the classifier assigns to each class, shape (num_classes,), int64."""
    _, probs = embed(classifier, images)
    return np.bincount(probs.argmax(1), minlength=classifier.num_classes).astype(np.int64)


def confidence(classifier: FashionClassifier, images: torch.Tensor) -> float:
    """Mean maximum softmax probability: near 1 for clear garments, low for broken shapes."""
    _, probs = embed(classifier, images)
    return float(probs.max(1).mean())


def coverage_report(counts: Sequence[int] | np.ndarray, min_share: float = 0.01) -> dict[str, Any]:
    """Summary of a predicted-class histogram.

    ``classes_covered``: classes with at least ``min_share`` of the samples; ``entropy``: Shannon
    entropy divided by log(num_classes) (1 = uniform, 0 = one class); ``min_share``/``max_share``:
    the rarest / commonest class's share; ``kl_to_uniform``: KL(p || uniform) in nats.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.size < 2 or (c < 0).any():
        raise ValueError("counts must be a 1-D histogram of at least two non-negative counts")
    total, k = c.sum(), c.size
    if total <= 0:
        raise ValueError("the histogram is empty")
    p = c / total
    nz = p[p > 0]
    entropy = max(0.0, float(-(nz * np.log(nz)).sum()))  # never -0.0
    return {
        "n": int(total),
        "num_classes": int(k),
        "classes_covered": int((p >= min_share).sum()),
        "entropy": entropy / math.log(k),
        "min_share": float(p.min()),
        "max_share": float(p.max()),
        "kl_to_uniform": float(math.log(k) - entropy),
        "shares": [float(x) for x in p],
    }


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance_from_stats(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2)), in float64.

    tr((A B)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric
    PSD matrix A^(1/2) B A^(1/2) (same spectrum as A B), which stays real and stable even for
    singular covariances, where scipy's ``sqrtm`` can return complex noise.
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    if mu_a.shape != mu_b.shape or cov_a.shape != cov_b.shape or cov_a.shape != (mu_a.size, mu_a.size):
        raise ValueError("mismatched shapes of means / covariances")
    sa = _sqrt_psd(cov_a)
    m = sa @ cov_b @ sa
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())
    diff = mu_a - mu_b
    fd = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)
    return max(fd, 0.0)


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, D) features, float64."""
    f = np.asarray(feats, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError("need an (N, D) array with N >= 2")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (FID's formula)."""
    return frechet_distance_from_stats(*feature_stats(feats_a), *feature_stats(feats_b))


def cell_features(images: np.ndarray, cells: int = 8) -> np.ndarray:
    """Pixel features for any image set, no trained network needed: (N, H, W, C) values in [0, 1] averaged
    over a ``cells`` x ``cells`` grid. RGBA colour is premultiplied by alpha (and alpha kept), so colour
    under transparent pixels doesn't count. Captures colour and layout, not fine detail: a coarse
    Fréchet distance for colour models (the bundled emoji model) where no classifier exists."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] % cells or x.shape[2] % cells:
        raise ValueError(f"expected (N, H, W, C) with H and W divisible by {cells}, got {x.shape}")
    if x.shape[-1] == 4:
        x = np.concatenate([x[..., :3] * x[..., 3:], x[..., 3:]], axis=-1)
    n, h, w, c = x.shape
    return x.reshape(n, cells, h // cells, cells, w // cells, c).mean(axis=(2, 4)).reshape(n, -1)


def to_unit_hwc(images: torch.Tensor) -> np.ndarray:
    """Generator output (N, C, H, W) in [-1, 1] -> (N, H, W, C) in [0, 1], as ``cell_features`` takes it."""
    return images.float().add(1).div(2).clamp(0, 1).permute(0, 2, 3, 1).numpy()


def alpha_layout(images: np.ndarray, border: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Per RGBA image (N, H, W, 4) in [0, 1]: mean alpha of the four ``border``-sized corner squares, and
    of the central square of half the side. Emoji-like pictures: transparent corners, opaque centre."""
    b = border
    corners = np.concatenate([images[:, :b, :b, 3], images[:, :b, -b:, 3], images[:, -b:, :b, 3],
                              images[:, -b:, -b:, 3]], axis=1)
    h, w = images.shape[1:3]
    centre = images[:, h * 3 // 8: h * 5 // 8, w * 3 // 8: w * 5 // 8, 3]
    return corners.reshape(len(images), -1).mean(axis=1), centre.mean(axis=(1, 2))


def compare_to_real_rgba(gen: Any, real: np.ndarray, n: int = 1000) -> dict[str, Any]:
    """Seeded samples of an RGBA generator against real images (N, H, W, 4) in [0, 1], without a classifier:
    ``cell_features`` FD of the model, of an untrained generator of the same shape (seeded) and of one half
    of the real set against the other (a floor), plus the samples and both ``alpha_layout`` results."""
    from .gan.models import DCGANGenerator

    samples = to_unit_hwc(generator_samples(gen, n))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = DCGANGenerator(gen.image_size, gen.channels, gen.latent_dim, int(gen.module.width))
    noise = to_unit_hwc(generator_samples(untrained, n))
    ref = cell_features(real)
    return {
        "fd": frechet_distance(cell_features(samples), ref),
        "fd_untrained": frechet_distance(cell_features(noise), ref),
        "fd_floor": frechet_distance(ref[::2], ref[1::2]),
        "samples": samples,
        "alpha_samples": alpha_layout(samples),
        "alpha_real": alpha_layout(real),
    }


def reference_features(classifier: FashionClassifier, split: str = "test") -> np.ndarray:
    """Classifier features of a Fashion-MNIST split (default: the 10,000 test images)."""
    from .datasets import load_fashion_mnist, to_generator_range

    images, _ = load_fashion_mnist(split)
    return embed(classifier, to_generator_range(images, classifier.image_size))[0]


def evaluate_images(classifier: FashionClassifier, images: torch.Tensor, reference_feats: np.ndarray | None,
                    min_share: float = 0.01) -> dict[str, Any]:
    """FD to the reference features (if given), the coverage report and the mean confidence."""
    if images.dim() != 4 or images.shape[1:] != (classifier.channels, classifier.image_size, classifier.image_size):
        raise ValueError(f"images must be (N, {classifier.channels}, {classifier.image_size}, "
                         f"{classifier.image_size}); got {tuple(images.shape)}")
    feats, probs = embed(classifier, images)
    counts = np.bincount(probs.argmax(1), minlength=classifier.num_classes)
    result: dict[str, Any] = {
        "fd": frechet_distance(feats, reference_feats) if reference_feats is not None else None,
        "confidence": float(probs.max(1).mean()),
        "counts": [int(x) for x in counts],
    }
    result.update(coverage_report(counts, min_share))
    return result


@torch.no_grad()
def generator_samples(gen: Any, n: int, seed: int = 0, batch: int = 250) -> torch.Tensor:
    """``n`` images from seeds seed, seed+1, ... (the app's seed convention), on the CPU.

    ``gen`` is a ``gandemo.Generator`` or any module with ``latent_dim`` mapping (N, latent_dim) to images.
    """
    if isinstance(gen, nn.Module):
        gen.eval()
    device = getattr(gen, "device", None) or next(gen.parameters()).device
    out = []
    for start in range(seed, seed + n, batch):
        z = latents_for_seeds(list(range(start, min(start + batch, seed + n))), int(gen.latent_dim))
        out.append(gen(z.to(device)).float().cpu())
    return torch.cat(out)


def evaluate_generator(gen: Any, classifier: FashionClassifier, n: int = 10000, seed: int = 0, *,
                       reference_feats: np.ndarray | None = None, min_share: float = 0.01) -> dict[str, Any]:
    """``evaluate_images`` on ``n`` seeded samples of ``gen`` (reference: the test set when not given).

    Grayscale-only: a generator with other channel counts or sizes raises ValueError.
    """
    if reference_feats is None:
        reference_feats = reference_features(classifier)
    images = generator_samples(gen, n, seed)
    return evaluate_images(classifier, images, reference_feats, min_share)


TABLE_HEADER = ("| source | FD to test set | classes covered | entropy (normalised) | min / max class share "
                "| mean confidence |\n|---|---:|---:|---:|---:|---:|")


def results_table(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of ``evaluate_images`` results, each row with an added ``source`` label."""
    lines = [TABLE_HEADER]
    for r in rows:
        fd = "n/a" if r.get("fd") is None else f"{r['fd']:.2f}"
        lines.append(f"| {r['source']} | {fd} | {r['classes_covered']}/{r['num_classes']} | {r['entropy']:.3f} "
                     f"| {r['min_share']:.1%} / {r['max_share']:.1%} | {r['confidence']:.3f} |")
    return "\n".join(lines)


def replace_markdown_section(text: str, heading: str, body: str, before: str | None = None) -> str:
    """``text`` with the section ``## heading`` replaced by ``body``.

    The section runs up to the next level-1 or level-2 heading outside code fences. When there is
    none, it goes in front of the section ``## before`` if that exists, else at the end.
    """
    lines = text.splitlines()
    title = f"## {heading.strip()}"
    new = [title, "", body.strip(), ""]
    start = end = anchor = None
    fenced = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced:
            continue
        if start is None and line.strip() == title:
            start = i
        elif start is not None and (line.startswith("# ") or line.startswith("## ")):
            end = i
            break
        elif anchor is None and before is not None and line.strip() == f"## {before.strip()}":
            anchor = i
    if start is None:
        if anchor is not None:
            return "\n".join([*lines[:anchor], *new, *lines[anchor:]]).rstrip("\n") + "\n"
        while lines and not lines[-1].strip():
            lines.pop()
        return "\n".join([*lines, "", *new])
    end = len(lines) if end is None else end
    return "\n".join([*lines[:start], *new, *lines[end:]]).rstrip("\n") + "\n"


__all__ = [
    "FashionClassifier", "class_histogram", "confidence", "coverage_report", "embed", "evaluate_generator",
    "evaluate_images", "feature_stats", "frechet_distance", "frechet_distance_from_stats", "generator_samples",
    "load_classifier", "reference_features", "replace_markdown_section", "results_table", "save_classifier",
]
