"""DCGAN generator/discriminator architecture, initialisation and the native checkpoint format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from factories import latents, tiny_native
from torch import nn

from gandemo import load_generator
from gandemo.gan.checkpoint import model_card, save_generator
from gandemo.gan.models import MODEL_CARD_TAGS, DCGANDiscriminator, DCGANGenerator
from gandemo.generator import read_card


@pytest.mark.parametrize("image_size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_generator_and_discriminator_shapes(image_size: int, channels: int) -> None:
    gen = DCGANGenerator(image_size=image_size, channels=channels, latent_dim=8, width=2).eval()
    disc = DCGANDiscriminator(image_size=image_size, channels=channels, width=2).eval()
    z = latents(3, 8)
    with torch.no_grad():
        images = gen(z)
        assert torch.equal(gen(z[:, :, None, None]), images)  # both latent shapes are accepted
        logits = disc(images)
    assert images.shape == (3, channels, image_size, image_size)
    assert images.min() >= -1 and images.max() <= 1
    assert logits.shape == (3,)


def test_output_range_is_tanh_bounded_even_for_huge_latents() -> None:
    gen = DCGANGenerator(image_size=32, channels=3, latent_dim=8, width=4).eval()
    with torch.no_grad():
        images = gen(latents(4, 8) * 1e4)
    assert images.abs().max() <= 1.0
    assert images.abs().max() > 0.5  # saturates instead of staying near zero


def test_discriminator_with_spectral_norm_has_no_batch_norm() -> None:
    disc = DCGANDiscriminator(image_size=32, channels=1, width=4, spectral_norm=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in disc.modules())
    assert disc(torch.zeros(2, 1, 32, 32)).shape == (2,)


def test_feature_widths_are_capped() -> None:
    gen = DCGANGenerator(image_size=128, channels=3, latent_dim=8, width=2)
    widths = [m.out_channels for m in gen.net if isinstance(m, nn.ConvTranspose2d)]
    assert widths == [16, 16, 8, 4, 2, 3]  # width * min(2**k, 8), then the image channels


def test_dcgan_initialisation_statistics() -> None:
    torch.manual_seed(0)
    gen = DCGANGenerator(image_size=64, channels=3, latent_dim=100, width=32)
    disc = DCGANDiscriminator(image_size=64, channels=3, width=32)
    for net in (gen, disc):
        convs = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
        assert abs(convs.mean().item()) < 1e-3
        assert convs.std().item() == pytest.approx(0.02, rel=0.05)
        norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        scales = torch.cat([m.weight.flatten() for m in norms])
        assert scales.mean().item() == pytest.approx(1.0, abs=0.01)
        assert scales.std().item() == pytest.approx(0.02, rel=0.25)
        assert all(torch.count_nonzero(m.bias) == 0 for m in norms)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"image_size": 48},
        {"image_size": 256},
        {"channels": 2},
        {"channels": 0},
        {"latent_dim": 0},
        {"latent_dim": 5000},
        {"width": 0},
        {"width": 2048},
    ],
)
def test_invalid_architecture_arguments_raise(kwargs: dict[str, int]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        DCGANGenerator(**kwargs)
    if name != "latent_dim":
        with pytest.raises(ValueError, match=name):
            DCGANDiscriminator(**kwargs)


def test_save_pretrained_round_trip_through_load_generator(tmp_path: Path) -> None:
    gen = tiny_native(image_size=32, channels=3, latent_dim=8, width=4, seed=7)
    gen.save_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text()) == {
        "image_size": 32, "channels": 3, "latent_dim": 8, "width": 4,
    }
    loaded = load_generator(str(tmp_path / "model"))
    assert loaded.layout == "gandemo"
    assert (loaded.image_size, loaded.channels, loaded.latent_dim) == (32, 3, 8)
    z = latents(5, 8)
    with torch.no_grad():
        expected = gen.eval()(z)
    assert torch.equal(loaded(z), expected)  # weights AND batch-norm statistics survived
    # the weights file alone (sibling config.json) loads too
    assert torch.equal(load_generator(str(tmp_path / "model" / "model.safetensors"))(z), expected)


def test_save_generator_writes_folder_atomically(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints" / "run"
    first = tiny_native(seed=1)
    card = model_card(title="Tiny", summary="A tiny test model.", config={"image_size": 32, "channels": 3,
                      "latent_dim": 8, "width": 4}, datasets=["mnist"])
    assert save_generator(first, folder, card=card) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert (folder / "config.json").read_text().endswith("}\n")

    second = tiny_native(seed=2)
    save_generator(second, folder)  # replaces the whole folder: the old card is gone
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert "Tiny" not in (folder / "README.md").read_text()
    z = latents(2, 8)
    with torch.no_grad():
        assert torch.equal(load_generator(str(folder))(z), second(z))
    assert sorted(p.name for p in folder.parent.iterdir()) == ["run"]  # no temp or backup folders left

    # a failing save leaves the previous checkpoint untouched and no temp folder behind
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(FileNotFoundError):
        save_generator(first, folder, extra_files={"notes.txt": tmp_path / "missing.txt"})
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["run"]


def test_save_generator_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path: Path) -> None:
    # e.g. a run folder kept on another disk and linked in: saving twice used to fail on the second
    # save ("Cannot call rmtree on a symbolic link") after the first had moved the link aside
    target, link = tmp_path / "disk" / "run", tmp_path / "work" / "run"
    link.parent.mkdir()
    save_generator(tiny_native(seed=1), target)
    link.symlink_to(target, target_is_directory=True)
    for seed in (2, 3):
        assert save_generator(tiny_native(seed=seed), link) == link
        assert link.is_symlink() and link.resolve() == target.resolve()
        z = latents(2, 8)
        with torch.no_grad():
            assert torch.equal(load_generator(str(link))(z), tiny_native(seed=seed)(z))
    assert sorted(p.name for p in link.parent.iterdir()) == ["run"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["run"]  # no temp or backup folders left

    # a stray link left where the backup goes (by the old code) is removed, not followed
    (target.parent / ".run.old").symlink_to(target, target_is_directory=True)
    save_generator(tiny_native(seed=4), link)
    assert sorted(p.name for p in target.parent.iterdir()) == ["run"]
    with torch.no_grad():
        assert torch.equal(load_generator(str(link))(z), tiny_native(seed=4)(z))


def test_model_card_yaml_metadata(tmp_path: Path) -> None:
    config = {"image_size": 64, "channels": 1, "latent_dim": 100, "width": 64}
    card = model_card(title="Fashion DCGAN", summary="Generates clothes.", config=config,
                      datasets=["fashion_mnist"], sections={"Training": "Ten epochs."})
    header = card.split("---\n")[1]
    meta = yaml.safe_load(header)
    assert meta["license"] == "mit"
    assert meta["datasets"] == ["fashion_mnist"]
    assert set(MODEL_CARD_TAGS) <= set(meta["tags"])
    assert meta["pipeline_tag"] == "unconditional-image-generation"
    assert "## Training" in card and "64x64 px" in card

    gen = DCGANGenerator(**config)
    folder = save_generator(gen, tmp_path / "fashion", card=card)
    parsed = read_card(folder / "README.md")
    assert parsed.title == "Fashion DCGAN"
    assert parsed.summary == "Generates clothes."
    assert parsed.metadata["datasets"] == ["fashion_mnist"]
    assert load_generator(str(folder)).card.title == "Fashion DCGAN"


def test_model_card_without_datasets_has_no_datasets_key() -> None:
    card = model_card(title="t", summary="s", config={"image_size": 32, "channels": 1, "latent_dim": 8, "width": 4})
    assert "datasets" not in yaml.safe_load(card.split("---\n")[1])
