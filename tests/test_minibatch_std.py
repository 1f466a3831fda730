"""Minibatch diversity in D (ProGAN's minibatch standard deviation, gandemo.gan.models.MinibatchStd): the layer,
every discriminator with it, training through the real Trainer (real and fake never share a group), resume, the
CLI and the Train tab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_train import cli_train, coloured_shapes, resumed_like_whole

from gandemo.gan.models import DCGANDiscriminator, MinibatchStd
from gandemo.gan.msg import MSGDiscriminator
from gandemo.gan.progressive import ProgressiveDiscriminator
from gandemo.gan.train import TrainConfig, Trainer
from gandemo.ui.train_tab import ADVANCED_ROWS, config_from_widgets, train_params

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py's


def images(n: int, size: int = 8, channels: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------- the layer
def test_the_extra_map_is_the_spread_of_each_group_of_four() -> None:
    x = images(8)
    x[4:] = x[4]  # the second group: four copies of one image
    out = MinibatchStd()(x)
    assert out.shape == (8, 4, 8, 8) and torch.equal(out[:, :3], x)
    spread = out[:, 3]
    assert torch.all(spread == spread[:, :1, :1])  # one value per image, the same at every position
    expected = x[:4].var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
    assert torch.allclose(spread[:4], expected.expand(4, 8, 8))
    assert spread[4:].max() < 1e-3 < expected  # identical images: no spread


def test_groups_are_consecutive_and_do_not_mix() -> None:
    x = images(8)
    changed = x.clone()
    changed[5] += 3.0  # an image of the second group
    before, after = MinibatchStd()(x)[:, 3, 0, 0], MinibatchStd()(changed)[:, 3, 0, 0]
    assert torch.equal(before[:4], after[:4]) and not torch.allclose(before[4:], after[4:])


@pytest.mark.parametrize(("n", "group"), [(6, 3), (5, 1), (2, 2), (1, 1)])
def test_a_batch_that_fours_do_not_divide(n: int, group: int) -> None:
    out = MinibatchStd()(images(n))[:, 3, 0, 0]
    assert out.shape == (n,)
    if group == 1:
        assert out.max() < 1e-3  # a group of one has no spread
    else:
        assert torch.equal(out[:group], out[:1].expand(group)) and out[0] > 0.1


# ------------------------------------------------------------------------------- every discriminator
def discriminators(size: int = 32) -> list[tuple[str, torch.nn.Module]]:
    return [(name, cls(size, 3, 8, sn, True).eval()) for name, cls in (
        ("dcgan", DCGANDiscriminator), ("msg", MSGDiscriminator), ("progressive", ProgressiveDiscriminator))
        for sn in (False, True)]


@pytest.mark.parametrize("index", range(6))
def test_each_discriminator_sees_the_rest_of_a_group(index: int) -> None:
    name, D = discriminators()[index]
    x = images(8, size=32)
    other = x.clone()
    other[1] = -other[1]  # a different second image: image 0's logit changes, images 4-7's don't
    with torch.no_grad():
        a, b = D(x), D(other)
    assert a.shape == (8,), name
    assert not torch.allclose(a[0], b[0]), name
    assert torch.equal(a[4:], b[4:]), name
    plain = type(D)(32, 3, 8, D.spectral_norm).eval()
    with torch.no_grad():
        assert torch.equal(plain(x)[0], plain(other)[0]), name  # without it, an image is judged alone


def test_the_progressive_discriminator_uses_it_at_every_stage() -> None:
    D = ProgressiveDiscriminator(32, 3, 8, False, True).eval()
    for stage, size in enumerate(D.sizes):
        x = images(4, size=size)
        other = x.clone()
        other[3] = -other[3]
        with torch.no_grad():
            assert not torch.allclose(D(x, stage, 0.5)[0], D(other, stage, 0.5)[0]), stage


def test_off_it_leaves_the_discriminators_as_they_were() -> None:
    """Off (the default), the layers, their names and the random initial weights are the old ones."""
    for cls in (DCGANDiscriminator, MSGDiscriminator, ProgressiveDiscriminator):
        torch.manual_seed(0)
        old = cls(32, 3, 8, False)
        torch.manual_seed(0)
        off = cls(32, 3, 8, False, False)
        torch.manual_seed(0)
        on = cls(32, 3, 8, False, True)
        assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), off.state_dict().values(), strict=True))
        assert [k for k in on.state_dict() if k not in old.state_dict()], cls  # the last conv moved into a Sequential
        last = [v for k, v in on.state_dict().items() if k.endswith("weight")][-1]
        assert last.shape[1] == [v for k, v in old.state_dict().items() if k.endswith("weight")][-1].shape[1] + 1


# ------------------------------------------------------------------------------- training
def mbstd_config(**overrides: object) -> TrainConfig:
    settings: dict[str, object] = dict(image_size=32, channels=3, latent_dim=16, width_g=8, width_d=8, batch_size=6,
                                       steps=6, preview_every=0, checkpoint_every=1000, seed=0, minibatch_std=True)
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("overrides", [
    {"spectral_norm": True},  # the defaults' D: the one forward over real and fake is split in two
    {"spectral_norm": False, "diffaugment": "", "label_smoothing": 1.0},  # the bundled recipe's batch-norm D
    {"arch": "msg", "r1_gamma": 1.0},
    {"arch": "progressive", "grow_steps": 1, "steps": 8},
], ids=["sn", "bn", "msg", "progressive"])
def test_it_trains_and_real_and_fake_never_share_a_group(overrides: dict, tmp_path: Path) -> None:
    trainer = Trainer(coloured_shapes(8, size=32), mbstd_config(**overrides), tmp_path / "run", device="cpu")
    seen: list[int] = []
    layer = next(m for m in trainer.D.modules() if isinstance(m, MinibatchStd))
    layer.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].shape[0]))
    stats = [trainer.train_step() for _ in range(trainer.config.steps)]
    assert all(v == v and abs(v) < 1e6 for s in stats for v in s.values())
    # batches of 6 real or 6 fake images (R1: the real ones again), never the 12 of both
    assert seen and set(seen) == {6}, seen


def test_resume_continues_exactly(tmp_path: Path) -> None:
    assert resumed_like_whole(coloured_shapes(8, size=32), mbstd_config(), tmp_path).config.minibatch_std


def test_the_cli_switch(tmp_path: Path, hf_env: dict[str, str]) -> None:
    run = cli_train(tmp_path, hf_env, "--minibatch-std", "--size", "32", "--steps", "3", "--width", "8",
                    "--batch-size", "4")
    assert json.loads((run.out / "training" / "state.json").read_text())["config"]["minibatch_std"] is True


def test_the_train_tab_and_the_api_have_it() -> None:
    assert any("minibatch_std" in row for row in ADVANCED_ROWS)
    assert "minibatch_std" in train_params()  # a /train parameter, after the older ones
    assert config_from_widgets({"minibatch_std": True}).minibatch_std
    assert not config_from_widgets({}).minibatch_std  # off unless asked
