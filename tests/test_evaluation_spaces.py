"""gandemo.evaluation_spaces: feature spaces beside the project's classifier, class balance, k-NN precision/recall."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gandemo.datasets import fashion_mnist_dir, load_fashion_mnist, to_generator_range
from gandemo.evaluation import frechet_distance
from gandemo.evaluation_spaces import (
    DEFAULT_JUDGE_DIR,
    FashionJudge,
    FeatureSpaces,
    PixelPCA,
    RandomConvFeatures,
    class_balance,
    judge_accuracy,
    knn_precision_recall,
    load_judge,
    net_features,
    save_judge,
)

needs_data = pytest.mark.skipif(fashion_mnist_dir() is None, reason="Fashion-MNIST not installed "
                                "(Debian's dataset-fashion-mnist or $GANDEMO_FASHION_MNIST)")
pytestmark = pytest.mark.usefixtures("one_thread")


# --- class balance ---------------------------------------------------------------------------------

def test_class_balance_of_balanced_skewed_and_one_class_histograms() -> None:
    assert class_balance([100] * 10) == {"max_min_ratio": 1.0, "entropy": pytest.approx(1.0)}
    skewed = class_balance([50] + [10] * 9)
    assert skewed["max_min_ratio"] == 5.0 and 0.8 < skewed["entropy"] < 1.0
    one = class_balance([0, 0, 300, 0])
    assert math.isinf(one["max_min_ratio"]) and one["entropy"] == 0.0
    with pytest.raises(ValueError):
        class_balance([0, 0])


# --- k-NN precision / recall -----------------------------------------------------------------------

def test_knn_precision_recall_same_distribution_high_collapsed_low_recall_shifted_low_precision() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 8))
    same = knn_precision_recall(real, rng.normal(size=(400, 8)))
    assert same["precision"] > 0.6 and same["recall"] > 0.6
    collapsed = knn_precision_recall(real, rng.normal(scale=0.05, size=(400, 8)))  # all at the centre
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.2
    far = knn_precision_recall(real, rng.normal(size=(400, 8)) + 6.0)
    assert far["precision"] < 0.05 and far["recall"] < 0.05
    with pytest.raises(ValueError):
        knn_precision_recall(real[:3], real[:3], k=3)


# --- spaces without training ---------------------------------------------------------------------

def test_random_conv_features_are_fixed_by_the_seed_and_leave_the_global_rng_alone() -> None:
    x = torch.rand(6, 1, 32, 32) * 2 - 1
    state = torch.get_rng_state()
    a, b, c = RandomConvFeatures(seed=0), RandomConvFeatures(seed=0), RandomConvFeatures(seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    fa, fb, fc = net_features(a, x), net_features(b, x), net_features(c, x)
    assert fa.shape == (6, 512) and np.array_equal(fa, fb) and not np.allclose(fa, fc)
    assert not any(p.requires_grad for p in a.parameters())


def test_fd_in_random_and_pca_spaces_is_near_zero_for_a_set_with_itself_and_grows_with_a_shift() -> None:
    g = torch.Generator().manual_seed(0)
    # blobs on a dark background, like clothing: positions and brightness vary
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    centres = torch.rand(1000, 2, generator=g) * 12 + 10
    r2 = (yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2
    images = (torch.exp(-r2 / 30) * 2 - 1)[:, None]
    a, b = images[:500], images[500:]
    brighter = (b + 0.8).clamp(-1, 1)
    for features in (lambda x: net_features(RandomConvFeatures(), x), PixelPCA(images, dims=16)):
        fa, fb, fshift = features(a), features(b), features(brighter)
        assert frechet_distance(fa, fa) < 1e-6
        same, shifted = frechet_distance(fa, fb), frechet_distance(fa, fshift)
        assert shifted > 5 * same and shifted > 0


def test_pixel_pca_keeps_the_largest_variance_directions() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 1, 4, 4, generator=g) * 0.01
    x[:, 0, 0, 0] += torch.randn(500, generator=g) * 3  # one pixel carries almost all the variance
    pca = PixelPCA(x, dims=2)
    assert abs(pca.components[0, 0]) > 0.99
    assert pca(x).shape == (500, 2)


# --- the judge -------------------------------------------------------------------------------------

def test_judge_saves_and_loads_and_refuses_a_foreign_folder(tmp_path) -> None:
    torch.manual_seed(0)
    judge = FashionJudge(hidden=(16, 8)).eval()
    save_judge(judge, tmp_path / "j", {"test_accuracy": 0.5})
    loaded = load_judge(tmp_path / "j")
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    assert torch.equal(loaded(x), judge(x))
    assert loaded.features(x)[0].shape == (3, 8)
    (tmp_path / "j" / "config.json").write_text('{"architecture": "something-else"}')
    with pytest.raises(ValueError, match="something-else"):
        load_judge(tmp_path / "j")
    with pytest.raises(FileNotFoundError, match="train_judge"):
        load_judge(tmp_path / "missing")


@needs_data
def test_committed_judge_is_small_accurate_and_not_the_project_classifier() -> None:
    assert (DEFAULT_JUDGE_DIR / "model.safetensors").stat().st_size < 2 * 2**20
    judge = load_judge()
    assert not any(isinstance(m, torch.nn.Conv2d) for m in judge.modules())  # built unlike the CNN classifier
    images, labels = load_fashion_mnist("test")
    assert judge_accuracy(judge, to_generator_range(images[:2000], 32), labels[:2000]) > 0.83


@needs_data
def test_feature_spaces_rank_real_images_above_noise_and_one_class_below_balanced() -> None:
    images, labels = load_fashion_mnist("train")
    ref = to_generator_range(images[:1500], 32)
    spaces = FeatureSpaces(reference=ref, pca_fit=to_generator_range(images[1500:4500], 32), knn_n=300)
    real = spaces.evaluate(to_generator_range(images[5000:6500], 32))
    noise = spaces.evaluate(torch.rand(1500, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    one_class = spaces.evaluate(to_generator_range(images[6500:20000][labels[6500:20000] == 7][:1500], 32))
    for space in ("classifier", "judge", "random conv", "pixel PCA"):
        assert real["fd"][space] < 0.2 * noise["fd"][space], space
        assert real["fd"][space] < one_class["fd"][space], space
        assert real["recall"][space] > one_class["recall"][space], space
    for clf in ("classifier", "judge"):
        assert real["balance"][clf]["max_min_ratio"] < 2.0 and real["balance"][clf]["entropy"] > 0.97
        assert one_class["balance"][clf]["entropy"] < 0.3  # sneakers only
    assert real["counts"]["judge"] and sum(real["counts"]["judge"]) == 1500
