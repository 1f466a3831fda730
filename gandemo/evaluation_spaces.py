"""More than one feature space for judging Fashion-MNIST generators.

``gandemo.evaluation`` measures in one space, the penultimate layer of the project's own CNN
classifier; a generator can learn what that one network looks at. This module adds spaces that
share nothing with it:

* **judge**: ``FashionJudge``, a multilayer perceptron on raw pixels (no convolutions, no batch
  norm), trained by a separate script (``benchmarks/train_judge.py``, weights in
  ``benchmarks/fashion_judge``) and used only to evaluate: its 128-d penultimate features and its
  class predictions;
* **random conv**: ``RandomConvFeatures``, a conv net that is never trained (Kaiming-initialised
  from a fixed seed), pooled to 512 features: "random features" FD, no data ever shaped it;
* **pixel PCA**: the images' pixels projected on the first 64 principal components of the real
  training images (``PixelPCA``): no network at all.

``FeatureSpaces`` holds all of them (plus the project's classifier) with the test set's
reference statistics, and ``FeatureSpaces.evaluate(images)`` returns, per space, the Fréchet
distance to the test set and k-NN precision / recall (Kynkäänniemi et al., 2019), and, under
both classifiers, the class balance (max / min class frequency and normalised entropy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .evaluation import (
    FashionClassifier,
    embed,
    feature_stats,
    frechet_distance_from_stats,
    load_classifier,
    read_model_folder,
    save_model_folder,
)

DEFAULT_JUDGE_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "fashion_judge"
JUDGE_ARCHITECTURE = "gandemo-fashion-mlp-judge"
JUDGE_CONFIG_KEYS = ("image_size", "hidden", "num_classes")
SPACES = ("classifier", "judge", "random conv", "pixel PCA")
CLASSIFIERS = ("classifier", "judge")


# ----------------------------------------------------------------------------- the second judge


class FashionJudge(nn.Module):
    """Pixels (N, 1, S, S) in [-1, 1] -> flatten -> Linear/ReLU/dropout stages (``hidden``) -> logits.

    Deliberately unlike ``FashionClassifier``: no convolutions, no pooling, no batch norm, so it
    keys on other image statistics. ``features`` is the last hidden layer (after ReLU)."""

    def __init__(self, image_size: int = 32, hidden: Sequence[int] = (256, 128), num_classes: int = 10,
                 dropout: float = 0.2):
        super().__init__()
        self.image_size = int(image_size)
        self.hidden = tuple(int(h) for h in hidden)
        self.num_classes = int(num_classes)
        layers: list[nn.Module] = [nn.Flatten()]
        width = self.image_size * self.image_size
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        self.body = nn.Sequential(*layers[:-1])  # no dropout after the feature layer
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, self.num_classes)
        self.feature_dim = width
        self.channels = 1

    def config(self) -> dict[str, Any]:
        return {"architecture": JUDGE_ARCHITECTURE, "image_size": self.image_size, "hidden": list(self.hidden),
                "num_classes": self.num_classes}

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return h, self.head(self.dropout(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[1]


def save_judge(model: FashionJudge, folder: str | Path, extra: dict[str, Any] | None = None) -> None:
    """model.safetensors + config.json, like ``gandemo.evaluation.save_classifier``."""
    save_model_folder(model, {**model.config(), **(extra or {})}, folder)


def load_judge(folder: str | Path | None = None) -> FashionJudge:
    """The judge in ``folder`` (default: ``benchmarks/fashion_judge``), in eval mode."""
    folder = Path(folder) if folder is not None else DEFAULT_JUDGE_DIR
    config, state = read_model_folder(folder, JUDGE_ARCHITECTURE, "judge", "benchmarks/train_judge.py")
    model = FashionJudge(**{k: config[k] for k in JUDGE_CONFIG_KEYS})
    model.load_state_dict(state, strict=True)
    return model.eval()


# ----------------------------------------------------------------------------- spaces without training


class RandomConvFeatures(nn.Module):
    """A conv net that is never trained: 3x3 convs (32, 64, 128) with ReLU and 2x2 average pooling,
    Kaiming-normal weights drawn from ``seed``, then a 2x2 adaptive average pool: 512 features.
    Random conv features still respond to edges, strokes and textures at several scales."""

    def __init__(self, channels: int = 1, widths: Sequence[int] = (32, 64, 128), seed: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        with torch.random.fork_rng():  # nn.Conv2d's own initialisation would advance the global stream
            for i, w in enumerate(widths):
                layers += [nn.Conv2d(c_in, w, 3, padding=1), nn.ReLU()]
                if i < len(widths) - 1:
                    layers.append(nn.AvgPool2d(2))
                c_in = w
        layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        rng = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in self.net:
                if isinstance(m, nn.Conv2d):
                    fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                    m.weight.copy_(torch.randn(m.weight.shape, generator=rng) * math.sqrt(2.0 / fan_in))
                    m.bias.zero_()
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PixelPCA:
    """Projection of flattened pixels on the top ``dims`` principal components of ``real`` images."""

    def __init__(self, real: torch.Tensor, dims: int = 64):
        x = real.flatten(1).double().numpy()
        self.mean = x.mean(0)
        # eigenvectors of the covariance, largest eigenvalues first
        w, v = np.linalg.eigh(np.cov(x - self.mean, rowvar=False))
        self.components = v[:, np.argsort(w)[::-1][:dims]]

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        return (images.flatten(1).double().numpy() - self.mean) @ self.components


@torch.no_grad()
def net_features(net: nn.Module, images: torch.Tensor, batch: int = 500) -> np.ndarray:
    """(N, D) float64 features of ``net`` over ``images`` in batches."""
    out = [net(chunk.float()).double() for chunk in images.split(batch)]
    return torch.cat(out).numpy()


# ----------------------------------------------------------------------------- metrics


def class_balance(counts: Sequence[int] | np.ndarray) -> dict[str, float]:
    """``max_min_ratio``: the commonest class's count over the rarest's (inf when a class is missing; 1 =
    balanced); ``entropy``: the histogram's entropy / log(number of classes) (1 = balanced, 0 = one class)."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.size < 2 or (c < 0).any() or c.sum() <= 0:
        raise ValueError("counts must be a non-empty 1-D histogram of at least two non-negative counts")
    p = c / c.sum()
    nz = p[p > 0]
    entropy = max(0.0, float(-(nz * np.log(nz)).sum()) / math.log(c.size))
    return {"max_min_ratio": float(c.max() / c.min()) if c.min() > 0 else math.inf, "entropy": entropy}


def _kth_neighbour_radius(x: np.ndarray, k: int) -> np.ndarray:
    d = _pairwise(x, x)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(sq, 0, None))


def knn_precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019) from k-NN balls in a feature space.

    precision: share of ``fake`` points inside some real point's k-NN ball (samples look real);
    recall: share of ``real`` points inside some fake point's k-NN ball (the data is covered)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.shape[0] <= k or fake.shape[0] <= k:
        raise ValueError(f"need more than k={k} points in each set")
    r_real, r_fake = _kth_neighbour_radius(real, k), _kth_neighbour_radius(fake, k)
    d = _pairwise(fake, real)  # (n_fake, n_real)
    precision = float((d <= r_real[None, :]).any(1).mean())
    recall = float((d <= r_fake[:, None]).any(0).mean())
    return {"precision": precision, "recall": recall}


# ----------------------------------------------------------------------------- all spaces together


class FeatureSpaces:
    """The four spaces with the reference statistics of ``reference`` (default: the 10,000 test images).

    ``knn_n`` reference points (a fixed subset) and as many samples enter k-NN precision / recall,
    which costs O(n^2)."""

    def __init__(self, reference: torch.Tensor | None = None, classifier: FashionClassifier | None = None,
                 judge: FashionJudge | None = None, pca_fit: torch.Tensor | None = None, knn_n: int = 2000,
                 seed: int = 0):
        from .datasets import load_fashion_mnist, to_generator_range

        if reference is None:
            reference = to_generator_range(load_fashion_mnist("test")[0], 32)
        if pca_fit is None:  # principal axes of other real images than the reference, when there are
            pca_fit = to_generator_range(load_fashion_mnist("train")[0][:20000], 32)
        self.classifier = classifier if classifier is not None else load_classifier()
        self.judge = judge if judge is not None else load_judge()
        self.random_conv = RandomConvFeatures(seed=seed)
        self.pca = PixelPCA(pca_fit)
        self.knn_n = knn_n
        feats, self.reference_counts = self.features(reference)
        self.reference_stats = {name: feature_stats(f) for name, f in feats.items()}
        pick = np.random.default_rng(seed).permutation(len(reference))[:knn_n]
        self.reference_knn = {name: f[pick] for name, f in feats.items()}

    def features(self, images: torch.Tensor) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(features per space, predicted-class counts per classifier) of images (N, 1, 32, 32) in [-1, 1]."""
        if images.dim() != 4 or tuple(images.shape[1:]) != (1, 32, 32):
            raise ValueError(f"images must be (N, 1, 32, 32) in [-1, 1]; got {tuple(images.shape)}")
        images = images.float()
        feats: dict[str, np.ndarray] = {}
        counts: dict[str, np.ndarray] = {}
        for name, net in (("classifier", self.classifier), ("judge", self.judge)):
            f, probs = embed(net, images)  # type: ignore[arg-type] - the judge has the same features()
            feats[name] = f
            counts[name] = np.bincount(probs.argmax(1), minlength=net.num_classes)
        feats["random conv"] = net_features(self.random_conv, images)
        feats["pixel PCA"] = self.pca(images)
        return feats, counts

    def evaluate(self, images: torch.Tensor, knn: bool = True) -> dict[str, Any]:
        """{"fd": {space: FD}, "precision"/"recall": {space: value} (if ``knn``),
        "balance": {classifier: class_balance}, "counts": {classifier: list}}."""
        feats, counts = self.features(images)
        result: dict[str, Any] = {
            "n": int(images.shape[0]),
            "fd": {name: frechet_distance_from_stats(*feature_stats(f), *self.reference_stats[name])
                   for name, f in feats.items()},
            "balance": {name: class_balance(c) for name, c in counts.items()},
            "counts": {name: [int(x) for x in c] for name, c in counts.items()},
        }
        if knn:
            pr = {name: knn_precision_recall(self.reference_knn[name], f[: self.knn_n]) for name, f in feats.items()}
            result["precision"] = {name: v["precision"] for name, v in pr.items()}
            result["recall"] = {name: v["recall"] for name, v in pr.items()}
        return result


def judge_accuracy(judge: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of a classifier on labelled images."""
    judge.eval()
    with torch.no_grad():
        pred = torch.cat([judge(chunk.float()).argmax(1) for chunk in images.split(1000)])
    return float((pred == labels).float().mean())


__all__ = [
    "CLASSIFIERS", "DEFAULT_JUDGE_DIR", "SPACES", "FashionJudge", "FeatureSpaces", "PixelPCA", "RandomConvFeatures",
    "class_balance", "judge_accuracy", "knn_precision_recall", "load_judge", "net_features", "save_judge",
]
