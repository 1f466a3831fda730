"""PacGAN's packing (gandemo.gan.models.pack_images, TrainConfig.pack): the packing, every discriminator with it,
training through the real Trainer, resume, the settings' check, the CLI, the Train tab and the health advice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_minibatch_std import images
from test_train import cli_train, coloured_shapes, gandemo_cli, resumed_like_whole

from gandemo.errors import InvalidInputError
from gandemo.gan.health import HealthMonitor, sample_diversity
from gandemo.gan.models import DCGANDiscriminator, pack_images
from gandemo.gan.msg import MSGDiscriminator
from gandemo.gan.progressive import ProgressiveDiscriminator
from gandemo.gan.train import TrainConfig, Trainer
from gandemo.i18n import translate_message
from gandemo.ui.train_tab import ADVANCED_ROWS, config_from_widgets, train_params

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py's
KINDS = (("dcgan", DCGANDiscriminator), ("msg", MSGDiscriminator), ("progressive", ProgressiveDiscriminator))


# ------------------------------------------------------------------------------- the packing
@pytest.mark.parametrize("pack", [2, 3])
def test_consecutive_images_are_stacked_along_the_channels(pack: int) -> None:
    x = images(6)
    out = pack_images(x, pack)
    assert out.shape == (6 // pack, 3 * pack, 8, 8)
    for j in range(6 // pack):
        assert torch.equal(out[j], torch.cat(list(x[j * pack:(j + 1) * pack])))


def test_one_is_no_packing_and_a_batch_that_does_not_divide_is_refused() -> None:
    x = images(5)
    assert pack_images(x, 1) is x
    with pytest.raises(ValueError, match="a batch of 5 images can't be packed in groups of 2"):
        pack_images(x, 2)


# ------------------------------------------------------------------------------- every discriminator
def discriminators(pack: int, size: int = 32) -> list[tuple[str, torch.nn.Module]]:
    return [(f"{name}-sn{sn}", cls(size, 3, 8, sn, False, pack).eval()) for name, cls in KINDS for sn in (False, True)]


@pytest.mark.parametrize("index", range(6))
def test_each_discriminator_gives_one_verdict_per_pack(index: int) -> None:
    name, D = discriminators(pack=2)[index]
    x = images(8, size=32)
    other = x.clone()
    other[1] = -other[1]  # the second image of the first pack: its verdict changes, the other packs' don't
    with torch.no_grad():
        a, b = D(x), D(other)
    assert a.shape == (4,), name
    assert not torch.allclose(a[0], b[0]), name
    assert torch.equal(a[1:], b[1:]), name
    swapped = x.clone()
    swapped[[0, 1]] = x[[1, 0]]  # the same two images, the other way round: D sees each place in the pack
    with torch.no_grad():
        assert not torch.allclose(D(swapped)[0], a[0]), name


def test_the_progressive_discriminator_packs_at_every_stage_and_fade() -> None:
    D = ProgressiveDiscriminator(32, 3, 8, False, False, 2).eval()
    for stage, size in enumerate(D.sizes):
        for alpha in (0.5, 1.0):
            x = images(4, size=size)
            other = x.clone()
            other[1] = -other[1]
            with torch.no_grad():
                a, b = D(x, stage, alpha), D(other, stage, alpha)
            assert a.shape == (2,), (stage, alpha)
            assert not torch.allclose(a[0], b[0]) and torch.equal(a[1], b[1]), (stage, alpha)


def test_the_msg_discriminator_packs_every_scale() -> None:
    D = MSGDiscriminator(32, 3, 8, True, False, 2).eval()
    pyramid = [images(4, size=s) for s in (4, 8, 16, 32)]
    for scale in range(4):
        other = [x.clone() for x in pyramid]
        other[scale][1] = -other[scale][1]  # one scale of one image: its pack's verdict, and only that, changes
        with torch.no_grad():
            a, b = D(pyramid), D(other)
        assert not torch.allclose(a[0], b[0]) and torch.equal(a[1], b[1]), scale


def test_one_leaves_the_discriminators_as_they_were_and_packing_widens_only_the_entries() -> None:
    for name, cls in KINDS:
        torch.manual_seed(0)
        old = cls(32, 3, 8, False)
        torch.manual_seed(0)
        one = cls(32, 3, 8, False, False, 1)
        packed = cls(32, 3, 8, False, False, 3)
        assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), one.state_dict().values(), strict=True))
        assert list(packed.state_dict()) == list(old.state_dict()), name
        changed = {k for k, v in packed.state_dict().items() if v.shape != old.state_dict()[k].shape}
        assert changed, name
        for k in changed:  # only the convolutions that read images: 3 more channels of input per extra image
            assert packed.state_dict()[k].shape[1] - old.state_dict()[k].shape[1] == 6, (name, k)


@pytest.mark.parametrize("pack", [0, 5, True, 2.0])
def test_a_discriminator_refuses_a_pack_it_cannot_build(pack: object) -> None:
    with pytest.raises(ValueError, match="pack must be a whole number from 1 to 4"):
        DCGANDiscriminator(32, 3, 8, False, False, pack)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- the settings
def test_the_batch_must_divide_by_the_pack() -> None:
    assert TrainConfig(batch_size=30, pack=3).validate().pack == 3
    with pytest.raises(InvalidInputError) as e:
        TrainConfig(batch_size=30, pack=4).validate()
    assert str(e.value) == ("Invalid training settings: the batch size must divide by pack, the images D judges at "
                            "once (30 doesn't divide by 4).")
    with pytest.raises(InvalidInputError, match=r"pack \(images D judges at once\) must be 1, 2, 3 or 4 \(got 8\)"):
        TrainConfig(pack=8).validate()


# ------------------------------------------------------------------------------- training
def pack_config(**overrides: object) -> TrainConfig:
    settings: dict[str, object] = dict(image_size=32, channels=3, latent_dim=16, width_g=8, width_d=8, batch_size=6,
                                       steps=6, preview_every=0, checkpoint_every=1000, seed=0, pack=2)
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("overrides", [
    {"spectral_norm": True},  # the defaults' D: one forward over 6 real then 6 fake images
    {"spectral_norm": False, "diffaugment": "", "label_smoothing": 1.0, "pack": 3},  # the bundled recipe's D
    {"arch": "msg", "r1_gamma": 1.0},
    {"arch": "progressive", "grow_steps": 1, "steps": 8, "minibatch_std": True},
], ids=["sn", "bn-pack3", "msg-r1", "progressive-mbstd"])
def test_it_trains_and_d_judges_packs(overrides: dict, tmp_path: Path) -> None:
    config = pack_config(**overrides).validate()
    trainer = Trainer(coloured_shapes(8, size=32), config, tmp_path / "run", device="cpu")
    entered: list[int] = []  # the channels of what D's first convolution reads
    verdicts: list[int] = []
    first = next(m for m in trainer.D.modules() if isinstance(m, torch.nn.Conv2d))
    first.register_forward_pre_hook(lambda _m, inputs: entered.append(inputs[0].shape[1]))
    trainer.D.register_forward_hook(lambda _m, _inputs, out: verdicts.append(out.shape[0]))
    stats = [trainer.train_step() for _ in range(config.steps)]
    assert all(v == v and abs(v) < 1e6 for s in stats for v in s.values())
    if overrides.get("arch") != "progressive":  # (growing, smaller images enter through other convolutions)
        assert entered and set(entered) == {3 * config.pack}
    together = config.spectral_norm and not config.minibatch_std
    # a verdict per pack: 6 images make 3 packs of 2 (2 of 3); with spectral norm D's phase takes real and fake
    # together (12 images), G's phase the 6 fakes
    assert set(verdicts) == ({12 // config.pack, 6 // config.pack} if together else {6 // config.pack}), verdicts
    assert trainer.D.pack == config.pack


def test_real_and_fake_images_never_share_a_pack(tmp_path: Path) -> None:
    """The one forward over real and fake: each pack's verdict goes to the loss of the half it came from."""
    config = pack_config(spectral_norm=True, diffaugment="")
    trainer = Trainer(coloured_shapes(8, size=32), config, tmp_path / "run", device="cpu")
    packs: list[torch.Tensor] = []
    trainer.D.register_forward_pre_hook(lambda _m, inputs: packs.append(inputs[0].detach().clone()))
    real = trainer.real_batch()
    trainer._order = torch.cat([trainer.last_batch, trainer._order])  # the step takes this real batch again
    trainer.train_step()
    both = packs[0]  # phase 1: 6 real images, then 6 fake ones
    assert both.shape[0] == 12
    assert torch.equal(both[:6], real)  # packs 0-2 of real images, packs 3-5 of fakes
    assert not any(torch.equal(fake, image) for fake in both[6:] for image in real)


def test_resume_continues_exactly(tmp_path: Path) -> None:
    resumed = resumed_like_whole(coloured_shapes(8, size=32), pack_config(), tmp_path)
    assert resumed.config.pack == 2 and resumed.D.pack == 2


# ------------------------------------------------------------------------------- the CLI, the tab, the advice
def test_the_cli_option(tmp_path: Path, hf_env: dict[str, str]) -> None:
    run = cli_train(tmp_path, hf_env, "--pack", "2", "--size", "32", "--steps", "3", "--width", "8",
                    "--batch-size", "4")
    assert json.loads((run.out / "training" / "state.json").read_text())["config"]["pack"] == 2
    proc = gandemo_cli(run.env, "train", str(run.data), "--out", str(tmp_path / "bad"), "--pack", "3",
                       "--batch-size", "4", "--device", "cpu")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "error: Invalid training settings: the batch size must divide by pack, the images D judges at once "
        "(4 doesn't divide by 3)."], proc.stderr
    assert not (tmp_path / "bad").exists()


def test_the_train_tab_and_the_api_have_it() -> None:
    assert any("pack" in row for row in ADVANCED_ROWS)
    assert train_params()[-1] == "pack"  # a /train parameter, after the older ones
    assert config_from_widgets({"pack": "2"}).pack == 2  # the radio's text
    assert config_from_widgets({}).pack == 1  # off unless asked


def test_the_mode_collapse_advice_names_it_in_both_languages() -> None:
    varied = images(16, size=16)
    monitor = HealthMonitor(real_diversity=sample_diversity(varied))
    monitor.observe_samples(100, varied)
    _, said = monitor.observe_samples(200, varied[:1].expand(16, -1, -1, -1))  # one image 16 times: collapse
    advice = next(m.text for m in said if m.code == "collapse")
    assert "packing (D judges 2-4 images at once)" in advice
    vietnamese = translate_message(advice, "vi")
    assert "đóng gói (D phán xét 2-4 ảnh cùng lúc)" in vietnamese and "Try:" not in vietnamese
