"""gandemo.evaluation: Fréchet distance, coverage, and the committed Fashion-MNIST classifier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gandemo.datasets import fashion_mnist_dir, load_fashion_mnist, to_generator_range
from gandemo.evaluation import (
    DEFAULT_CLASSIFIER_DIR,
    FashionClassifier,
    alpha_layout,
    cell_features,
    coverage_report,
    embed,
    evaluate_generator,
    evaluate_images,
    frechet_distance,
    frechet_distance_from_stats,
    generator_samples,
    load_classifier,
    replace_markdown_section,
    results_table,
    save_classifier,
)
from gandemo.gan.models import DCGANGenerator
from gandemo.generator import Generator

needs_data = pytest.mark.skipif(
    fashion_mnist_dir() is None,
    reason="Fashion-MNIST not found: install Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist) "
           "or set GANDEMO_FASHION_MNIST to a folder with the idx .gz files",
)


pytestmark = pytest.mark.usefixtures("one_thread")


def random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


# --- Fréchet distance ------------------------------------------------------------------------------

def test_cell_features_average_cells_and_ignore_colour_under_transparency() -> None:
    rng = np.random.default_rng(5)
    rgb = rng.uniform(size=(3, 16, 16, 3)).astype(np.float32)
    feats = cell_features(rgb, cells=4)
    assert feats.shape == (3, 4 * 4 * 3)
    assert np.allclose(feats[1].reshape(4, 4, 3)[2, 1], rgb[1, 8:12, 4:8].mean(axis=(0, 1)))
    rgba = np.concatenate([rgb, np.zeros((3, 16, 16, 1), np.float32)], axis=-1)
    rgba[0, :8, :8, 3] = 1.0  # one opaque quarter in the first image only
    feats = cell_features(rgba, cells=2).reshape(3, 2, 2, 4)
    assert np.allclose(feats[1:], 0)  # fully transparent: its colours don't count
    assert np.allclose(feats[0, 0, 0], [*rgb[0, :8, :8].mean(axis=(0, 1)), 1.0])
    assert np.allclose(feats[0, 1, 1], 0)
    with pytest.raises(ValueError, match="divisible"):
        cell_features(rgb[:, :15], cells=4)


def test_alpha_layout_measures_corners_and_centre() -> None:
    images = np.zeros((2, 16, 16, 4), np.float32)
    images[0, 6:10, 6:10, 3] = 1.0  # an opaque dot in the middle: the centre square is 6..10
    images[1, :, :, 3] = 0.5
    images[1, :2, :2, 3] = 1.0  # one opaque corner of four
    corners, centre = alpha_layout(images, border=2)
    assert np.allclose(corners, [0.0, (1.0 + 0.5 * 3) / 4]) and np.allclose(centre, [1.0, 0.5])


def test_fd_of_identical_sets_is_zero() -> None:
    feats = np.random.default_rng(0).normal(size=(400, 16)) * 3 + 1
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-8)


def test_fd_is_symmetric() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 8))
    b = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8)) + 0.5
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)


def test_fd_of_a_mean_shift_is_the_squared_shift_and_grows() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=(300, 8))
    direction = rng.normal(size=8)
    fds = [frechet_distance(a, a + t * direction) for t in (0.0, 0.5, 1.0, 2.0)]
    for t, fd in zip((0.0, 0.5, 1.0, 2.0), fds, strict=True):
        assert fd == pytest.approx(t**2 * float(direction @ direction), rel=1e-7, abs=1e-8)
    assert fds == sorted(fds) and fds[-1] > fds[1] > 0


def test_fd_from_stats_matches_closed_forms() -> None:
    rng = np.random.default_rng(3)
    # diagonal covariances: sum of (sqrt(a) - sqrt(b))^2 plus the squared mean difference
    va, vb = rng.uniform(0.1, 4, 6), rng.uniform(0.1, 4, 6)
    ma, mb = rng.normal(size=6), rng.normal(size=6)
    expected = float(((ma - mb) ** 2).sum() + ((np.sqrt(va) - np.sqrt(vb)) ** 2).sum())
    assert frechet_distance_from_stats(ma, np.diag(va), mb, np.diag(vb)) == pytest.approx(expected, rel=1e-10)
    # general (non-commuting) covariances: tr sqrt(A B) = sum of sqrt of the (real, >= 0) eigenvalues of A B
    a, b = random_cov(rng, 5), random_cov(rng, 5)
    tr_sqrt = np.sqrt(np.linalg.eigvals(a @ b).real.clip(0)).sum()
    expected = float(((ma[:5] - mb[:5]) ** 2).sum() + np.trace(a) + np.trace(b) - 2 * tr_sqrt)
    assert frechet_distance_from_stats(ma[:5], a, mb[:5], b) == pytest.approx(expected, rel=1e-8)
    # singular covariances stay real and non-negative
    low_rank = np.outer(ma, ma)
    assert 0 <= frechet_distance_from_stats(ma, low_rank, ma, low_rank) < 1e-6


def test_fd_of_gaussian_samples_approaches_the_closed_form() -> None:
    rng = np.random.default_rng(4)
    d = 3
    mu_a, mu_b = np.zeros(d), np.array([1.0, -0.5, 0.25])
    cov_a, cov_b = random_cov(rng, d), random_cov(rng, d)
    exact = frechet_distance_from_stats(mu_a, cov_a, mu_b, cov_b)
    a = rng.multivariate_normal(mu_a, cov_a, size=100_000)
    b = rng.multivariate_normal(mu_b, cov_b, size=100_000)
    assert frechet_distance(a, b) == pytest.approx(exact, rel=0.03, abs=0.02)


# --- coverage ---------------------------------------------------------------------------------------

def test_coverage_of_uniform_and_single_class_histograms() -> None:
    uniform = coverage_report([100] * 10)
    assert uniform["classes_covered"] == 10
    assert uniform["entropy"] == pytest.approx(1.0)
    assert uniform["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)
    assert uniform["min_share"] == pytest.approx(0.1) and uniform["max_share"] == pytest.approx(0.1)

    single = coverage_report([0, 0, 0, 1000, 0, 0, 0, 0, 0, 0])
    assert single["classes_covered"] == 1
    assert single["entropy"] == pytest.approx(0.0, abs=1e-12)
    assert single["kl_to_uniform"] == pytest.approx(math.log(10))
    assert single["max_share"] == 1.0 and single["min_share"] == 0.0

    # a class below min_share (default 1%) does not count as covered
    rare = coverage_report([995, 5] + [0] * 8)
    assert rare["classes_covered"] == 1 and 0 < rare["entropy"] < 0.1
    assert coverage_report([995, 5] + [0] * 8, min_share=0.005)["classes_covered"] == 2

    with pytest.raises(ValueError):
        coverage_report([0] * 10)


# --- classifier plumbing ---------------------------------------------------------------------------

def test_classifier_shapes_and_save_load_roundtrip(tmp_path) -> None:
    torch.manual_seed(0)
    model = FashionClassifier().eval()
    x = torch.rand(7, 1, 32, 32) * 2 - 1
    feats, logits = model.features(x)
    assert feats.shape == (7, model.feature_dim) and logits.shape == (7, 10)
    save_classifier(model, tmp_path, {"test_accuracy": 0.5})
    loaded = load_classifier(tmp_path)
    torch.testing.assert_close(loaded(x), model(x))
    with pytest.raises(FileNotFoundError):
        load_classifier(tmp_path / "missing")


def test_generator_samples_follow_the_seed_convention() -> None:
    torch.manual_seed(0)
    module = DCGANGenerator(32, 1, 8, 4)
    wrapped = Generator(module, source="tiny", layout="gandemo")
    a = generator_samples(module, 5, seed=3, batch=2)
    assert a.shape == (5, 1, 32, 32)
    torch.testing.assert_close(a, wrapped.sample([3, 4, 5, 6, 7]))


def test_evaluate_images_and_table() -> None:
    torch.manual_seed(0)
    model = FashionClassifier().eval()
    images = torch.rand(50, 1, 32, 32) * 2 - 1
    ref = embed(model, torch.rand(60, 1, 32, 32) * 2 - 1)[0]
    result = evaluate_images(model, images, ref)
    assert result["n"] == 50 and sum(result["counts"]) == 50 and result["fd"] >= 0
    assert 0.1 <= result["confidence"] <= 1
    table = results_table([{"source": "x", **result}])
    assert table.count("\n") == 2 and "| x |" in table
    with pytest.raises(ValueError):
        evaluate_images(model, torch.zeros(2, 3, 32, 32), ref)


def test_replace_markdown_section_inserts_then_replaces() -> None:
    card = "# Title\n\nIntro.\n\n## Use\n\n```python\n## not a heading\n```\n\n## Data licence\n\nMIT.\n"
    once = replace_markdown_section(card, "Evaluation", "| a |")
    assert once.endswith("## Evaluation\n\n| a |\n") and "## Data licence" in once
    twice = replace_markdown_section(once, "Evaluation", "| b |")
    assert "| a |" not in twice and twice.count("## Evaluation") == 1 and twice.endswith("| b |\n")
    # a section in the middle is replaced in place, leaving what follows untouched
    middle = replace_markdown_section(card, "Use", "new use")
    assert "## not a heading" not in middle and middle.index("new use") < middle.index("## Data licence")
    assert middle.endswith("## Data licence\n\nMIT.\n")
    # with an anchor, a new section goes in front of it; an existing one stays where it is
    anchored = replace_markdown_section(card, "Evaluation", "| a |", before="Data licence")
    assert anchored.index("## Evaluation") < anchored.index("## Data licence") and anchored.endswith("MIT.\n")
    assert replace_markdown_section(once, "Evaluation", "| c |", before="Data licence").endswith("| c |\n")


# --- the committed classifier on real data ---------------------------------------------------------

@pytest.fixture(scope="module")
def committed_classifier() -> FashionClassifier:
    assert (DEFAULT_CLASSIFIER_DIR / "model.safetensors").is_file(), (
        "the committed classifier is missing; run scripts/train_classifier.py")
    assert (DEFAULT_CLASSIFIER_DIR / "model.safetensors").stat().st_size < 1024**2
    return load_classifier()


@needs_data
def test_committed_classifier_is_accurate(committed_classifier: FashionClassifier) -> None:
    images, labels = load_fashion_mnist("test")
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:500]
    with torch.no_grad():
        pred = committed_classifier(to_generator_range(images[idx])).argmax(1)
    accuracy = float((pred == labels[idx]).float().mean())
    assert accuracy > 0.85, accuracy


@needs_data
def test_real_images_are_much_closer_than_an_untrained_generator(committed_classifier: FashionClassifier) -> None:
    test_images, _ = load_fashion_mnist("test")
    ref = embed(committed_classifier, to_generator_range(test_images[:2000]))[0]
    train_images, _ = load_fashion_mnist("train")
    idx = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(0))[:500]
    real = evaluate_images(committed_classifier, to_generator_range(train_images[idx]), ref)

    torch.manual_seed(0)
    untrained = Generator(DCGANGenerator(32, 1, 100, 64), source="untrained", layout="gandemo")
    fake = evaluate_generator(untrained, committed_classifier, n=500, reference_feats=ref)
    assert fake["n"] == 500

    assert real["fd"] * 5 < fake["fd"], (real["fd"], fake["fd"])
    assert real["classes_covered"] == 10 and real["entropy"] > 0.95
    assert fake["entropy"] < real["entropy"]
