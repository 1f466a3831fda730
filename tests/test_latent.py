"""Seeded latents, truncation and interpolation."""

from __future__ import annotations

import pytest
import torch

from gandemo.gan.latent import (
    MAX_SEED,
    interpolate_latents,
    latent_for_seed,
    latent_walk,
    latents_for_seeds,
    lerp,
    slerp,
    truncate,
)


def test_latent_for_seed_is_deterministic_and_seed_specific() -> None:
    a = latent_for_seed(42, 128)
    assert a.shape == (128,) and a.dtype == torch.float32
    assert torch.equal(a, latent_for_seed(42, 128))
    assert not torch.equal(a, latent_for_seed(43, 128))
    assert torch.equal(latent_for_seed(0, 16), latent_for_seed(0, 16))
    assert latent_for_seed(MAX_SEED, 4).shape == (4,)
    # independent of the global RNG state
    torch.manual_seed(1)
    b = latent_for_seed(42, 128)
    torch.manual_seed(2)
    assert torch.equal(b, latent_for_seed(42, 128))


def test_latents_for_seeds_stacks_the_single_seed_latents() -> None:
    batch = latents_for_seeds([5, 6, 7], 32)
    assert batch.shape == (3, 32)
    for row, seed in zip(batch, [5, 6, 7]):
        assert torch.equal(row, latent_for_seed(seed, 32))


def test_latents_look_standard_normal() -> None:
    z = latents_for_seeds(list(range(200)), 100)
    assert z.mean().item() == pytest.approx(0.0, abs=0.02)
    assert z.std().item() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1])
def test_seed_out_of_range(seed: int) -> None:
    with pytest.raises(ValueError, match="seed"):
        latent_for_seed(seed, 8)


@pytest.mark.parametrize("threshold", [0.3, 0.7, 1.0, 2.0])
def test_truncation_bounds_and_keeps_entries_inside(threshold: float) -> None:
    plain = latent_for_seed(9, 512)
    truncated = latent_for_seed(9, 512, truncation=threshold)
    assert truncated.abs().max() <= threshold
    inside = plain.abs() <= threshold
    assert torch.equal(truncated[inside], plain[inside])  # only entries beyond +-t are redrawn
    assert not torch.equal(truncated[~inside], plain[~inside])
    assert torch.equal(truncated, latent_for_seed(9, 512, truncation=threshold))  # still deterministic


def test_truncate_directly() -> None:
    z = torch.tensor([0.1, -0.4, 3.0, -2.5, 0.49])
    out = truncate(z, 0.5, torch.Generator().manual_seed(0))
    assert out.abs().max() <= 0.5
    assert torch.equal(out[[0, 1, 4]], z[[0, 1, 4]])
    assert torch.equal(z, torch.tensor([0.1, -0.4, 3.0, -2.5, 0.49]))  # input not modified
    tiny = truncate(torch.full((4,), 5.0), 1e-9, max_rounds=3)  # gives up sampling, clamps
    assert tiny.abs().max() <= 1e-9


@pytest.mark.parametrize("threshold", [0.0, -1.0])
def test_truncation_must_be_positive(threshold: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        truncate(torch.zeros(3), threshold)


def _pair(dim: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    return latent_for_seed(1, dim), latent_for_seed(2, dim)


@pytest.mark.parametrize("fn", [lerp, slerp])
def test_interpolation_endpoints(fn) -> None:
    a, b = _pair()
    torch.testing.assert_close(fn(a, b, 0.0), a)
    torch.testing.assert_close(fn(a, b, 1.0), b)
    both = fn(a, b, torch.tensor([0.0, 1.0]))
    assert both.shape == (2, 64)
    torch.testing.assert_close(both[0], a)
    torch.testing.assert_close(both[1], b)


def test_lerp_midpoint_is_the_mean() -> None:
    a, b = _pair()
    torch.testing.assert_close(lerp(a, b, 0.5), (a + b) / 2)


def test_slerp_keeps_the_norm_of_equal_norm_inputs() -> None:
    a, b = _pair()
    b = b / b.norm() * a.norm()
    path = slerp(a, b, torch.linspace(0, 1, 11))
    torch.testing.assert_close(path.norm(dim=1), a.norm().expand(11))
    # a straight line cuts inside the sphere
    assert lerp(a, b, 0.5).norm() < 0.9 * a.norm()


def test_slerp_interpolates_norms_linearly() -> None:
    a, b = _pair()
    b = b / b.norm() * 2 * a.norm()
    torch.testing.assert_close(slerp(a, b, 0.5).norm(), 1.5 * a.norm())


def test_slerp_lies_on_the_plane_of_a_and_b() -> None:
    a, b = _pair()
    basis = torch.stack([a, b], dim=1)  # (dim, 2)
    for t in (0.25, 0.5, 0.8):
        point = slerp(a, b, t)
        coeffs = torch.linalg.lstsq(basis, point[:, None]).solution
        torch.testing.assert_close(basis @ coeffs, point[:, None], atol=1e-5, rtol=1e-5)
        assert coeffs.min() > 0  # between a and b, not beyond them


def test_slerp_of_parallel_vectors_falls_back_to_a_line() -> None:
    a = latent_for_seed(3, 16)
    out = slerp(a, 2 * a, 0.5)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, 1.5 * a)


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolate_latents_frames(method: str) -> None:
    a, b = _pair()
    frames = interpolate_latents(a, b, 5, method)
    assert frames.shape == (5, 64)
    torch.testing.assert_close(frames[0], a)
    torch.testing.assert_close(frames[-1], b)
    open_ended = interpolate_latents(a, b, 5, method, endpoint=False)
    assert open_ended.shape == (5, 64)
    torch.testing.assert_close(open_ended[0], a)
    assert not torch.allclose(open_ended[-1], b)
    # endpoint=False frames are the first 5 of 6 evenly spaced frames that end at b
    torch.testing.assert_close(open_ended, interpolate_latents(a, b, 6, method)[:5])
    if method == "lerp":
        torch.testing.assert_close(frames[2], (a + b) / 2)


def test_interpolate_latents_errors() -> None:
    a, b = _pair()
    for frames in (1, 0, -3):
        with pytest.raises(ValueError, match="2 frames"):
            interpolate_latents(a, b, frames)
    with pytest.raises(ValueError, match="method"):
        interpolate_latents(a, b, 4, method="cubic")
    with pytest.raises(ValueError, match="frames"):
        interpolate_latents(a, b, 0, endpoint=False)
    with pytest.raises(ValueError, match="frames"):
        latent_walk(torch.stack([a, b]), 0)
    with pytest.raises(ValueError, match="method"):
        latent_walk(torch.stack([a, b]), 4, method="nearest")


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_latent_walk_loop_is_seamless(method: str) -> None:
    points = latents_for_seeds([10, 11, 12], 32)
    per_segment = 4
    walk = latent_walk(points, per_segment, method=method, loop=True)
    assert walk.shape == (3 * per_segment, 32)
    for k in range(3):  # every waypoint is visited exactly once, at the start of its segment
        torch.testing.assert_close(walk[k * per_segment], points[k])
    # no two consecutive frames are equal, including where segments meet and where the loop wraps
    cyclic = torch.cat([walk, walk[:1]])
    steps = (cyclic[1:] - cyclic[:-1]).norm(dim=1)
    assert steps.min() > 1e-3
    # the last frame is one step before the start: playing on repeat returns to the start
    torch.testing.assert_close(walk[-1], interpolate_latents(points[2], points[0], per_segment + 1, method)[-2])


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_latent_walk_without_loop_ends_at_last_point(method: str) -> None:
    points = latents_for_seeds([1, 2, 3], 16)
    walk = latent_walk(points, 3, method=method, loop=False)
    assert walk.shape == (2 * 3 + 1, 16)
    torch.testing.assert_close(walk[0], points[0])
    torch.testing.assert_close(walk[3], points[1])
    torch.testing.assert_close(walk[-1], points[2])
    assert ((walk[1:] - walk[:-1]).norm(dim=1) > 1e-3).all()
