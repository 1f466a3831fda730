"""MSG-GAN (gandemo/gan/msg.py): the networks at every scale, training through the real Trainer and the CLI,
checkpoints that load everywhere a generator loads, and the Generate tab's /scales view over real HTTP."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from app_harness import AppProcess, app  # noqa: F401 - `app` is the shared server fixture
from factories import unique_repo_id
from gradio_client import Client
from hub_server import StandInHub
from PIL import Image
from safetensors.torch import load_file, save_file
from test_app_train import named, train_args
from test_train import cli_train, coloured_shapes, write_pngs

from gandemo import load_generator
from gandemo.errors import InvalidInputError, UnsupportedCheckpointError
from gandemo.gan.checkpoint import save_generator
from gandemo.gan.models import DCGANGenerator
from gandemo.gan.msg import MSGDiscriminator, MSGGenerator, augment_scales, image_pyramid, scale_sizes
from gandemo.gan.train import TrainConfig, Trainer
from gandemo.hub import push_folder
from gandemo.ui.train_tab import config_from_widgets, train_params

REPO_ROOT = Path(__file__).resolve().parents[1]
SIZES = {64: [4, 8, 16, 32, 64], 128: [4, 8, 16, 32, 64, 128]}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py's


def msg_config(**overrides: object) -> TrainConfig:
    settings: dict[str, object] = dict(image_size=64, channels=3, arch="msg", latent_dim=16, width_g=8, width_d=8,
                                       batch_size=4, steps=3, preview_every=0, checkpoint_every=1000, seed=0)
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def latents(n: int = 3, dim: int = 16) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(5))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trainer, Path]:
    """A real MSG-GAN run at 64 px: 3 steps with DiffAugment and R1 on, saved by the Trainer."""
    out = tmp_path_factory.mktemp("msg-runs") / "msg-run"
    trainer = Trainer(coloured_shapes(8, size=64), msg_config(r1_gamma=1.0), out, device="cpu")
    events = list(trainer.train())
    assert events[-1].kind == "done"
    return trainer, out


# ------------------------------------------------------------------------------- the networks
@pytest.mark.parametrize("size", [64, 128])
def test_generator_draws_every_scale(size: int) -> None:
    G = MSGGenerator(size, 3, 16, 8).eval().requires_grad_(False)
    assert scale_sizes(size) == G.sizes == SIZES[size]
    images = G.scales(latents())
    assert [tuple(x.shape) for x in images] == [(3, 3, s, s) for s in SIZES[size]]
    assert all(float(x.abs().max()) <= 1 for x in images)  # every scale in the image range
    assert torch.equal(G(latents()), images[-1])  # forward() is the full-size image, as for a DCGAN
    assert len(G.to_rgb) == len(SIZES[size]) - 1  # one toRGB per hidden block; the last block draws the image


@pytest.mark.parametrize("size", [64, 128])
def test_discriminator_takes_each_scale_at_its_depth(size: int) -> None:
    G, D = MSGGenerator(size, 3, 16, 8), MSGDiscriminator(size, 3, 8, spectral_norm=True)
    images = [x.detach().requires_grad_(True) for x in G.scales(latents(2))]
    logits = D(images)
    assert logits.shape == (2,)
    grads = torch.autograd.grad(logits.sum(), images)
    # every scale reaches D's decision directly: the multi-scale gradients the method is named for
    assert all(float(g.abs().sum()) > 0 for g in grads), [float(g.abs().sum()) for g in grads]
    full = torch.rand(2, 3, size, size) * 2 - 1
    D.eval()  # spectral norm's power iteration runs in training mode only
    assert torch.allclose(D(full), D(image_pyramid(full)))  # a full-size batch is pooled into the scales
    with pytest.raises(ValueError, match="takes images at"):
        D(images[1:])


def test_generator_step_reaches_every_to_rgb() -> None:
    G, D = MSGGenerator(64, 3, 16, 8), MSGDiscriminator(64, 3, 8)
    D(G.scales(latents(4))).mean().backward()
    assert all(float(conv.weight.grad.abs().sum()) > 0 for conv in G.to_rgb)


def test_augmentation_is_the_same_at_every_scale() -> None:
    torch.manual_seed(0)
    full = torch.rand(6, 3, 64, 64) * 2 - 1
    pyramid = image_pyramid(full)
    # colour changes are affine per image, so they commute with average pooling: the same change at every scale
    coloured = augment_scales(pyramid, ("color",))
    for small, big in zip(coloured, image_pyramid(coloured[-1])):
        assert torch.allclose(small, big, atol=1e-5)
    # a shift of d px at 64 px is d * s / 64 px at s px (rounded): one bright square's centre moves alike
    square = torch.full((8, 1, 64, 64), -1.0)
    square[:, :, 24:40, 24:40] = 1.0
    shifted = augment_scales(image_pyramid(square), ("translation",))

    def centre(x: torch.Tensor) -> torch.Tensor:
        w = (x + 1).flatten(2).sum(2).squeeze(1)
        ys = torch.arange(x.shape[-1], dtype=torch.float32) + 0.5
        return torch.stack([((x + 1).sum(3).squeeze(1) * ys).sum(1) / w, ((x + 1).sum(2).squeeze(1) * ys).sum(1) / w])

    moved_full = centre(shifted[-1]) - 32
    assert float(moved_full.abs().max()) > 0  # something moved
    for x in shifted[1:-1]:
        s = x.shape[-1]
        assert torch.allclose(centre(x) - s / 2, torch.round(moved_full * s / 64), atol=1e-4)
    # the cut-out covers about the same share of each image at every scale
    ones = [torch.ones(8, 1, s, s) for s in SIZES[64]]
    cut = augment_scales(ones, ("cutout",))
    share_full = (cut[-1] == 0).float().mean((1, 2, 3))
    assert float(share_full.min()) > 0
    for x in cut[2:-1]:  # from 16 px up (at 4 and 8 px one pixel is 1/16 and 1/64 of the picture)
        assert float(((x == 0).float().mean((1, 2, 3)) - share_full).abs().max()) < 0.1


def test_r1_covers_every_scale() -> None:
    trainer = Trainer(coloured_shapes(8, size=64), msg_config(diffaugment="", r1_gamma=2.0), "/nonexistent-unused",
                      device="cpu")
    trainer.D.eval()  # no power iteration between the two measurements
    real = image_pyramid(trainer.real_batch())
    everywhere = float(trainer.r1_penalty(real).detach())
    xs = [x.detach().requires_grad_(True) for x in real]
    (grad,) = torch.autograd.grad(trainer.D(xs).sum(), xs[-1])
    full_only = float(2.0 / 2 * grad.pow(2).flatten(1).sum(1).mean() * 4)
    assert everywhere > full_only > 0


# ------------------------------------------------------------------------------- training
def test_a_few_steps_through_the_trainer(trained: tuple[Trainer, Path]) -> None:
    trainer, _ = trained
    assert isinstance(trainer.G, MSGGenerator) and isinstance(trainer.D, MSGDiscriminator)
    assert trainer.step == 3 and len(trainer.history) == 3
    assert all(torch.isfinite(torch.tensor(list(row.values()))).all() for row in trainer.history)
    torch.manual_seed(0)  # the Trainer's seed: the initial weights it started from
    fresh = MSGGenerator(64, 3, 16, 8)
    assert not torch.equal(fresh.to_rgb[0].weight, trainer.G.to_rgb[0].weight), "the 4x4 toRGB never learned"


@pytest.mark.parametrize("spectral_norm", [True, False])
def test_trainer_with_and_without_spectral_norm(tmp_path: Path, spectral_norm: bool) -> None:
    trainer = Trainer(coloured_shapes(8, size=64), msg_config(spectral_norm=spectral_norm, steps=2, r1_gamma=1.0),
                      tmp_path / "run", device="cpu")
    stats = [trainer.train_step() for _ in range(2)]
    assert all(v == v and abs(v) < 1e6 for s in stats for v in s.values())


def test_resume_continues_exactly(tmp_path: Path) -> None:
    data = coloured_shapes(8, size=64)
    whole = Trainer(data, msg_config(steps=4), tmp_path / "whole", device="cpu")
    list(whole.train())
    first = Trainer(data, msg_config(steps=2), tmp_path / "half", device="cpu")
    list(first.train())
    resumed = Trainer.resume(tmp_path / "half", data, steps=4, device="cpu")
    assert resumed.config.arch == "msg" and isinstance(resumed.G, MSGGenerator)
    list(resumed.train())
    for a, b in zip(whole.G_ema.state_dict().values(), resumed.G_ema.state_dict().values()):
        assert torch.equal(a, b)


def test_cli_trains_an_msg_gan(tmp_path: Path, hf_env: dict[str, str]) -> None:
    run = cli_train(tmp_path, hf_env, "--arch", "msg", "--size", "64", "--steps", "2", "--width", "8",
                    "--batch-size", "4")
    assert json.loads((run.out / "config.json").read_text())["arch"] == "msg"
    assert json.loads((run.out / "training" / "state.json").read_text())["config"]["arch"] == "msg"
    gen = load_generator(str(run.out), device="cpu")
    assert gen.arch == "msg" and gen.layout == "gandemo-msg"
    bad = run.gandemo("train", str(run.data), "--arch", "stylegan")
    assert bad.returncode == 2 and "dcgan" in bad.stderr and "msg" in bad.stderr, bad.stderr
    help_text = run.gandemo("train", "--help").stdout
    assert "--arch {dcgan,msg,progressive}" in help_text and "(default: dcgan)" in help_text


def test_two_ranks_train_one_msg_gan(tmp_path: Path, hf_env: dict[str, str]) -> None:
    """torchrun with 2 Gloo processes: the ranks' G, D and EMA stay identical after every step (R1 on)."""
    from test_ddp import train_two_ranks

    out, steps = train_two_ranks(tmp_path, hf_env, ["--arch", "msg", "--size", "64", "--steps", "3"])
    assert steps == [1, 2, 3]
    assert load_generator(str(out), device="cpu").arch == "msg"


def test_the_train_tab_and_api_take_the_architecture() -> None:
    assert TrainConfig().arch == "dcgan"  # the default stays the DCGAN
    assert "arch" in train_params()
    config = config_from_widgets({"arch": "msg", "resolution": "128"})
    assert (config.arch, config.image_size) == ("msg", 128)
    with pytest.raises(InvalidInputError, match="architecture must be 'dcgan', 'msg' or 'progressive'"):
        config_from_widgets({"arch": "stylegan"}).validate()


# ------------------------------------------------------------------------------- checkpoints
def test_config_and_card_name_the_architecture(trained: tuple[Trainer, Path]) -> None:
    _, out = trained
    assert json.loads((out / "config.json").read_text()) == {
        "arch": "msg", "channels": 3, "image_size": 64, "latent_dim": 16, "width": 8}
    card = (out / "README.md").read_text()
    assert "(gandemo MSG-GAN)" in card and "MSG-GAN generator, 64x64 px" in card
    assert "- msg-gan" in card.split("---")[1]  # a Hub tag
    assert "4x4, 8x8, 16x16, 32x32, 64x64" in card and "gen.scales(z)" in card


def test_a_dcgan_checkpoint_is_unchanged(tmp_path: Path) -> None:
    trainer = Trainer(coloured_shapes(8, size=32), msg_config(arch="dcgan", image_size=32, steps=1), tmp_path / "d",
                      device="cpu")
    list(trainer.train())
    assert "arch" not in json.loads((tmp_path / "d" / "config.json").read_text())
    card = (tmp_path / "d" / "README.md").read_text()
    assert "DCGAN generator, 32x32 px" in card and "msg-gan" not in card
    gen = load_generator(str(tmp_path / "d"), device="cpu")
    assert (gen.arch, gen.layout, gen.scale_sizes) == ("dcgan", "gandemo", [32])
    with pytest.raises(InvalidInputError, match="Only MSG-GAN models draw their images at every scale"):
        gen.scales(latents())


def test_save_then_load_gives_the_same_images(trained: tuple[Trainer, Path], tmp_path: Path) -> None:
    trainer, out = trained
    gen = load_generator(str(out), device="cpu")
    assert (gen.arch, gen.layout, gen.image_size, gen.scale_sizes) == ("msg", "gandemo-msg", 64, SIZES[64])
    expected = [x.float() for x in trainer.G_ema.eval().scales(latents())]
    got = gen.scales(latents())
    assert len(got) == 5 and all(torch.equal(a, b) for a, b in zip(expected, got))
    assert torch.equal(gen(latents()), got[-1])
    assert [tuple(x.shape) for x in gen.sample_scales([0, 1])] == [(2, 3, s, s) for s in SIZES[64]]
    # the weights alone (no config.json): recognised by their tensors' names and shapes
    bare = tmp_path / "weights" / "msg-generator.safetensors"
    bare.parent.mkdir()
    shutil.copyfile(out / "model.safetensors", bare)
    alone = load_generator(str(bare), device="cpu")
    assert (alone.layout, alone.image_size, alone.latent_dim) == ("gandemo-msg", 64, 16)
    assert "gandemo MSG-GAN" in alone.card.summary
    assert torch.equal(alone(latents()), got[-1])


def test_strict_loading_refuses_a_wrong_layout(trained: tuple[Trainer, Path], tmp_path: Path) -> None:
    _, out = trained

    def folder(name: str, config: dict, state: dict[str, torch.Tensor]) -> str:
        path = tmp_path / name
        path.mkdir()
        (path / "config.json").write_text(json.dumps(config))
        save_file(state, path / "model.safetensors")
        return str(path)

    msg_state = load_file(out / "model.safetensors")
    dcgan_state = DCGANGenerator(64, 3, 16, 8).state_dict()
    config = json.loads((out / "config.json").read_text())
    with pytest.raises(UnsupportedCheckpointError, match=r"don't match the config.json's gandemo MSG-GAN architecture: "
                                                         r"missing \['blocks"):
        load_generator(folder("dcgan-weights", config, dcgan_state), device="cpu")
    with pytest.raises(UnsupportedCheckpointError, match=r"config.json's gandemo DCGAN architecture: missing \['net"):
        load_generator(folder("no-arch", {k: v for k, v in config.items() if k != "arch"}, msg_state), device="cpu")
    with pytest.raises(UnsupportedCheckpointError, match=r"wrong shapes \['blocks.0.0.weight \(16, 64, 4, 4\)"):
        load_generator(folder("wider", {**config, "width": 16}, msg_state), device="cpu")
    with pytest.raises(UnsupportedCheckpointError, match="names the architecture 'stylegan', which gandemo doesn't know"):
        load_generator(folder("unknown", {**config, "arch": "stylegan"}, msg_state), device="cpu")
    torn = {k: v for k, v in msg_state.items() if not k.startswith("to_rgb.2.")}
    bare = tmp_path / "torn.safetensors"
    save_file(torn, bare)
    with pytest.raises(UnsupportedCheckpointError, match=r"gandemo MSG-GAN architecture: missing \['to_rgb.2.bias'"):
        load_generator(str(bare), device="cpu")


def test_hub_push_then_load(trained: tuple[Trainer, Path], hub: StandInHub) -> None:
    _, out = trained
    token = hub.add_write_token(f"hf_msgtest_{secrets.token_hex(12)}", user="msg-pusher")
    repo = unique_repo_id("msg", owner="msg-pusher")
    push_folder(out, repo, token, private=False)
    from_hub = load_generator(repo, device="cpu")
    assert from_hub.layout == "gandemo-msg"
    assert all(torch.equal(a, b) for a, b in zip(from_hub.scales(latents()),
                                                  load_generator(str(out), device="cpu").scales(latents())))


def test_save_generator_writes_an_msg_folder(tmp_path: Path) -> None:
    G = MSGGenerator(128, 4, 16, 4)
    save_generator(G, tmp_path / "g")
    gen = load_generator(str(tmp_path / "g"), device="cpu")
    assert (gen.image_size, gen.channels, gen.arch) == (128, 4, "msg")
    assert torch.equal(gen(latents()), G.eval()(latents()))


# ------------------------------------------------------------------------------- the app: /scales
@pytest.fixture(scope="module")
def client(app: AppProcess, tmp_path_factory: pytest.TempPathFactory) -> Client:  # noqa: F811
    return app.client(tmp_path_factory.mktemp("scales-client"))


@pytest.mark.app
@pytest.mark.timeout(600)
def test_scales_endpoint_shows_every_scale(client: Client, trained: tuple[Trainer, Path]) -> None:
    _, out = trained
    gallery, note = client.predict(model=str(out), seed=2, num=3, api_name="/scales")
    assert len(gallery) == 5, gallery
    assert [item["caption"] for item in gallery] == [
        "4×4 px (shown ×32)", "8×8 px (shown ×16)", "16×16 px (shown ×8)", "32×32 px (shown ×4)",
        "64×64 px: the final image (shown ×2)"]
    assert "5 scales, from 4×4 to 64×64" in note
    gen = load_generator(str(out), device="cpu")
    expected = gen.sample_scales([2, 3, 4])
    for item, images, size in zip(gallery, expected, SIZES[64]):
        picture = Image.open(item["image"])
        assert picture.size == (3 * 128 + 2 * 4, 128)
        # the first seed's cell, shrunk back by its nearest-neighbour factor, is that seed's image at this scale
        cell = torch.from_numpy(np.array(picture.convert("RGB"))).float()[:, :128]
        native = cell[:: 128 // size, :: 128 // size].permute(2, 0, 1)
        want = images[0].add(1).mul(127.5).clamp(0, 255).round()
        assert float((native - want).abs().max()) <= 1.0, size
        blown_up = F.interpolate(native[None], scale_factor=128 // size, mode="nearest")[0]
        assert torch.equal(blown_up, cell.permute(2, 0, 1))  # blocky: nearest-neighbour, no smoothing


@pytest.mark.app
@pytest.mark.timeout(600)
def test_train_an_msg_gan_through_the_api_then_see_its_scales(client: Client, tmp_path: Path) -> None:
    images = write_pngs(tmp_path / "images", 8)
    outputs = named(client.predict(**train_args(images, steps=2, resolution="64", width=16, batch_size=4,
                                                preview_every=10, arch="msg"), api_name="/train"))
    run = Path(outputs["run_dir"])
    assert json.loads((run / "config.json").read_text())["arch"] == "msg", outputs["status"]
    gallery, _ = client.predict(model=str(run), seed=0, num=1, api_name="/scales")
    assert [Image.open(item["image"]).size for item in gallery] == [(128, 128)] * 5


@pytest.mark.app
@pytest.mark.timeout(600)
def test_scales_endpoint_explains_a_dcgan(client: Client) -> None:
    gallery, note = client.predict(model="fashion-mnist", seed=0, num=2, api_name="/scales")
    assert gallery == [] or gallery is None
    assert note.startswith("Only MSG-GAN models have intermediate scales.")
    params = [p["parameter_name"] for p in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
              ["/scales"]["parameters"]]
    assert params == ["model", "seed", "num"]
