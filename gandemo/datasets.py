"""Fashion-MNIST, read from Debian's ``dataset-fashion-mnist`` files or torchvision's download."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist_dir() -> Path | None:
    """Where the idx files live: $GANDEMO_FASHION_MNIST, Debian's package, or None."""
    for candidate in (os.environ.get("GANDEMO_FASHION_MNIST"), DEBIAN_DIR):
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").exists():
            return Path(candidate)
    return None


def load_fashion_mnist(split: str = "train", root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 (N, 28, 28) and labels as int64 (N,).

    Uses Debian's files when present; otherwise torchvision downloads the data set into
    ``root`` (default ``~/.cache/gandemo/fashion-mnist``).
    """
    if split not in ("train", "test"):
        raise ValueError("split must be 'train' or 'test'")
    prefix = "train" if split == "train" else "t10k"
    folder = fashion_mnist_dir()
    if folder is not None:
        images = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        labels = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
        return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))
    from torchvision.datasets import FashionMNIST  # only needed off Debian

    root = Path(root or Path.home() / ".cache" / "gandemo" / "fashion-mnist")
    ds = FashionMNIST(str(root), train=split == "train", download=True)
    return ds.data.clone(), ds.targets.clone().long()


def to_generator_range(images: torch.Tensor, size: int = 32) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, size, size) in [-1, 1], zero-padded (black) to ``size``."""
    x = images.float().div(127.5).sub(1.0)[:, None]
    pad = (size - x.shape[-1]) // 2
    if pad > 0:
        x = torch.nn.functional.pad(x, (pad, size - x.shape[-1] - pad) * 2, value=-1.0)
    return x
