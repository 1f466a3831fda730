"""Progressive growing (gandemo/gan/progressive.py): the growth schedule, the networks at every stage and their
fade-in, training through the real Trainer, torchrun and the CLI, resuming, and checkpoints that load everywhere
a generator loads (config.json says "progressive"; the weights alone load as the MSG-GAN generator they match)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from app_harness import AppProcess, app  # noqa: F401 - `app` is the shared server fixture
from gradio_client import Client
from safetensors.torch import load_file, save_file
from test_app_train import named, train_args
from test_train import cli_train, coloured_shapes, resumed_like_whole, write_pngs

from gandemo import load_generator
from gandemo.errors import InvalidInputError, UnsupportedCheckpointError
from gandemo.gan.msg import MSGGenerator, scale_sizes
from gandemo.gan.progressive import (
    GrowthSchedule,
    ProgressiveDiscriminator,
    ProgressiveGenerator,
    blend_real,
    upsample,
)
from gandemo.gan.train import TrainConfig, Trainer
from gandemo.ui.train_tab import config_from_widgets

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py's


def grow_config(**overrides: object) -> TrainConfig:
    settings: dict[str, object] = dict(image_size=32, channels=3, arch="progressive", latent_dim=16, width_g=8,
                                       width_d=8, batch_size=4, steps=8, grow_steps=2, preview_every=0,
                                       checkpoint_every=1000, seed=0)
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def latents(n: int = 3, dim: int = 16) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(5))


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trainer, Path, list]:
    """A real progressive run at 32 px: 4x4, 8x8 and 16x16 for 2 steps each (a 1-step fade-in), then 32x32,
    with DiffAugment and R1 on, previews every step."""
    out = tmp_path_factory.mktemp("progressive-runs") / "grown"
    trainer = Trainer(coloured_shapes(8, size=32), grow_config(r1_gamma=1.0, steps=9, preview_every=1), out, device="cpu")
    events = list(trainer.train())
    assert events[-1].kind == "done"
    return trainer, out, events


# ------------------------------------------------------------------------------- the schedule
def test_the_schedule_grows_one_resolution_at_a_time() -> None:
    s = GrowthSchedule(64, 10)
    assert s.sizes == [4, 8, 16, 32, 64] and s.full_size_step == 40 and s.fade_steps == 5
    assert [s.at(step) for step in (0, 9)] == [(0, 1.0), (0, 1.0)]  # 4x4 needs no fade-in
    assert [s.at(step) for step in range(10, 16)] == [(1, 0.2), (1, 0.4), (1, 0.6), (1, 0.8), (1, 1.0), (1, 1.0)]
    assert s.at(40) == (4, 0.2) and s.at(44) == (4, 1.0) and s.at(10_000) == (4, 1.0)  # full size to the end
    assert GrowthSchedule(64, 1).at(1) == (1, 1.0)  # one step per resolution: no fade-in left
    # automatic: the first half of the run grows, each smaller resolution an equal share
    assert GrowthSchedule.automatic(64, 2000) == 250 and GrowthSchedule.automatic(128, 1000) == 100
    assert GrowthSchedule.automatic(32, 3) == 1


# ------------------------------------------------------------------------------- the networks
@pytest.mark.parametrize("size", [32, 64, 128])
def test_generator_grows_and_fades_each_resolution_in(size: int) -> None:
    G = ProgressiveGenerator(size, 3, 16, 8).eval().requires_grad_(False)
    z = latents()
    sizes = scale_sizes(size)
    for stage, s in enumerate(sizes):
        image = G.grown(z, stage)
        assert image.shape == (3, 3, s, s) and float(image.abs().max()) <= 1
        if stage:  # alpha 0: exactly the stage before, upsampled; a fade-in starts where the last stage ended
            assert torch.allclose(G.grown(z, stage, 0.0), upsample(G.grown(z, stage - 1)), atol=1e-6)
            half = G.grown(z, stage, 0.5)
            assert torch.allclose(half, (G.grown(z, stage, 0.0) + image) / 2, atol=1e-5)
    assert torch.equal(G.grown(z, len(sizes) - 1), G(z))  # grown: DCGAN's final layer draws the image
    assert torch.equal(G(z, stage=1, alpha=0.5), G.grown(z, 1, 0.5))  # the training loop's call
    with pytest.raises(ValueError, match="stage must be between 0 and"):
        G.grown(z, len(sizes))


@pytest.mark.parametrize("size", [32, 64])
def test_discriminator_reads_each_resolution_and_fades_it_in(size: int) -> None:
    D = ProgressiveDiscriminator(size, 3, 8).eval()
    sizes = scale_sizes(size)
    torch.manual_seed(1)
    for stage, s in enumerate(sizes):
        x = torch.rand(2, 3, s, s) * 2 - 1
        assert D(x, stage).shape == (2,)
        if stage:  # alpha 0: the image, halved, through the entry of the stage before
            assert torch.allclose(D(x, stage, 0.0), D(F.avg_pool2d(x, 2), stage - 1), atol=1e-5)
    full = torch.rand(2, 3, size, size) * 2 - 1
    assert torch.equal(D(full), D(full, len(sizes) - 1))  # no stage: the full size, as a DCGAN discriminator
    with pytest.raises(ValueError, match="takes 8 px images"):
        D(full, 1)


def test_a_stage_trains_only_its_own_layers() -> None:
    G, D = ProgressiveGenerator(32, 3, 16, 8), ProgressiveDiscriminator(32, 3, 8)
    D(G(latents(4), stage=1, alpha=0.5), stage=1, alpha=0.5).mean().backward()
    touched = {name for name, p in [*G.named_parameters(), *D.named_parameters()] if p.grad is not None}
    # G: blocks 0-1 and the toRGBs of 4x4 (fading out) and 8x8; D: the fromRGBs of 4x4 and 8x8, one block
    assert {"to_rgb.0.weight", "to_rgb.1.weight", "blocks.1.0.weight", "from_rgb.0.0.weight",
            "from_rgb.1.0.weight", "final.weight"} <= touched
    assert not touched & {"to_rgb.2.weight", "blocks.2.0.weight", "blocks.3.0.weight", "from_rgb.2.0.weight",
                          "first.0.weight"}


def test_real_images_fade_in_too() -> None:
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    assert torch.equal(blend_real(x, 32, 1.0), x)
    eight = F.avg_pool2d(x, 4)
    assert torch.allclose(blend_real(x, 8, 1.0), eight)
    assert torch.allclose(blend_real(x, 8, 0.0), upsample(F.avg_pool2d(eight, 2)))  # what D saw at 4x4, enlarged


# ------------------------------------------------------------------------------- training
def test_a_run_grows_through_every_resolution(grown: tuple[Trainer, Path, list]) -> None:
    trainer, _, events = grown
    assert isinstance(trainer.G, ProgressiveGenerator) and isinstance(trainer.D, ProgressiveDiscriminator)
    assert trainer.step == 9 and all(torch.isfinite(torch.tensor(list(r.values()))).all() for r in trainer.history)
    torch.manual_seed(0)  # the Trainer's seed: the weights it started from
    fresh_g, fresh_d = ProgressiveGenerator(32, 3, 16, 8), ProgressiveDiscriminator(32, 3, 8)
    # every resolution was trained: the 4x4 toRGB and fromRGB, and the full-size layers at the end
    assert not torch.equal(fresh_g.to_rgb[0].weight, trainer.G.to_rgb[0].weight)
    assert not torch.equal(fresh_g.blocks[-1][0].weight, trainer.G.blocks[-1][0].weight)
    assert not torch.equal(fresh_d.from_rgb[0][0].weight, trainer.D.from_rgb[0][0].weight)
    assert not torch.equal(fresh_d.first[0].weight, trainer.D.first[0].weight)
    # the previews show the resolution of the moment, enlarged to the output size (blocky below it)
    previews = [e for e in events if e.preview is not None]
    assert [e.step for e in previews] == list(range(1, 10))
    assert {e.preview.size for e in previews} == {previews[-1].preview.size}
    assert trainer.grown_size == 32


def test_previews_show_the_resolution_of_the_moment(tmp_path: Path) -> None:
    trainer = Trainer(coloured_shapes(8, size=32), grow_config(), tmp_path / "preview", device="cpu")
    trainer.train_step()
    trainer.step = 1  # as train() counts: the step just made trained at 4x4
    _, samples = trainer.preview()
    assert trainer.grown_size == 4 and samples.shape == (16, 3, 32, 32)
    # 4x4 px drawn, enlarged to 32 px: blocks of 8x8 equal pixels, and not one flat colour
    assert torch.equal(samples, F.interpolate(samples[..., ::8, ::8], scale_factor=8, mode="nearest"))
    assert float(samples.std()) > 0


def test_grow_steps_are_resolved_once_and_kept(tmp_path: Path) -> None:
    trainer = Trainer(coloured_shapes(8, size=32), grow_config(grow_steps=0, steps=24), tmp_path / "auto", device="cpu")
    assert trainer.config.grow_steps == 4 and trainer.growth is not None and trainer.growth.full_size_step == 12
    list(trainer.train())
    state = json.loads((tmp_path / "auto" / "training" / "state.json").read_text())
    assert state["config"]["grow_steps"] == 4  # a resume with more steps grows the same way
    resumed = Trainer.resume(tmp_path / "auto", coloured_shapes(8, size=32), steps=40, device="cpu")
    assert resumed.config.grow_steps == 4 and resumed.growth.full_size_step == 12


def test_a_run_too_short_to_grow_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"reaches the full size after 7 steps, but the run has 6"):
        Trainer(coloured_shapes(8, size=32), grow_config(steps=6), tmp_path / "short", device="cpu")
    with pytest.raises(InvalidInputError, match=r"grow steps must be between 0 and 1,000,000 \(got -1\)"):
        grow_config(grow_steps=-1).validate()


def test_resume_continues_exactly(tmp_path: Path) -> None:
    # stop in the middle of the 8x8 fade-in (step 3 of 9), then resume: the same weights as one run
    def in_the_fade_in(resumed: Trainer) -> None:
        assert resumed.growth is not None and resumed.growth.at(resumed.step) == (1, 1.0)

    resumed_like_whole(coloured_shapes(8, size=32), grow_config(steps=9), tmp_path, on_resume=in_the_fade_in)


def test_spectral_norm_and_hinge_while_growing(tmp_path: Path) -> None:
    trainer = Trainer(coloured_shapes(8, size=32), grow_config(spectral_norm=True, loss="hinge", r1_gamma=1.0),
                      tmp_path / "sn", device="cpu")
    stats = [trainer.train_step() for _ in range(8)]
    assert all(v == v and abs(v) < 1e6 for s in stats for v in s.values())


# ------------------------------------------------------------------------------- checkpoints
def test_config_card_and_loading(grown: tuple[Trainer, Path, list], tmp_path: Path) -> None:
    trainer, out, _ = grown
    assert json.loads((out / "config.json").read_text()) == {
        "arch": "progressive", "channels": 3, "image_size": 32, "latent_dim": 16, "width": 8}
    card = (out / "README.md").read_text()
    assert "(gandemo Progressive GAN)" in card and "Progressive GAN generator, 32x32 px" in card
    assert "- progressive-growing" in card.split("---")[1] and "msg-gan" not in card.split("---")[1]
    assert "grew one resolution at a time (4x4, 8x8, 16x16, 32x32)" in card and "Still growing" not in card
    gen = load_generator(str(out), device="cpu")
    assert (gen.arch, gen.layout, gen.image_size, gen.scale_sizes) == ("progressive", "gandemo-progressive", 32, [32])
    assert torch.equal(gen(latents()), trainer.G_ema.eval()(latents()).float())
    with pytest.raises(InvalidInputError, match="Only MSG-GAN models draw their images at every scale"):
        gen.scales(latents())
    # the weights alone are an MSG-GAN generator's: they load as one and draw the same images
    bare = tmp_path / "grown.safetensors"
    shutil.copyfile(out / "model.safetensors", bare)
    alone = load_generator(str(bare), device="cpu")
    assert alone.layout == "gandemo-msg" and torch.equal(alone(latents()), gen(latents()))
    # strict: a config.json that says progressive over other weights is refused, naming what is missing
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "config.json").write_text(json.dumps({**json.loads((out / "config.json").read_text()), "width": 16}))
    save_file(load_file(out / "model.safetensors"), wrong / "model.safetensors")
    with pytest.raises(UnsupportedCheckpointError, match="config.json's gandemo Progressive GAN architecture"):
        load_generator(str(wrong), device="cpu")


def test_a_stopped_growing_run_says_so(tmp_path: Path) -> None:
    trainer = Trainer(coloured_shapes(8, size=32), grow_config(steps=9), tmp_path / "early", device="cpu")
    for event in trainer.train():
        if event.step == 3:
            break
    trainer.save()
    card = (tmp_path / "early" / "README.md").read_text()
    assert "Still growing: its last step trained at 8x8 px" in card and "from step 6 on" in card
    assert isinstance(load_generator(str(tmp_path / "early"), device="cpu").module, ProgressiveGenerator)
    assert not isinstance(ProgressiveGenerator(32, 3, 16, 8), MSGGenerator)  # siblings, not the same architecture


def test_cli_grows_a_gan(tmp_path: Path, hf_env: dict[str, str]) -> None:
    run = cli_train(tmp_path, hf_env, "--arch", "progressive", "--grow-steps", "1", "--size", "32", "--steps", "4",
                    "--width", "8", "--batch-size", "4")
    state = json.loads((run.out / "training" / "state.json").read_text())
    assert (state["config"]["arch"], state["config"]["grow_steps"]) == ("progressive", 1)
    assert load_generator(str(run.out), device="cpu").arch == "progressive"
    short = run.gandemo("train", str(run.data), "--out", str(tmp_path / "short"), "--arch", "progressive",
                        "--grow-steps", "5", "--size", "32", "--steps", "2", "--width", "8", "--device", "cpu",
                        timeout=300)
    assert short.returncode != 0 and "reaches the full size after 17 steps" in short.stderr, short.stderr
    assert len(short.stderr.strip().splitlines()) == 1, short.stderr  # one line, no traceback
    help_text = run.gandemo("train", "--help").stdout
    assert "--arch {dcgan,msg,progressive}" in help_text and "--grow-steps" in help_text


def test_two_ranks_grow_one_gan(tmp_path: Path, hf_env: dict[str, str]) -> None:
    """torchrun with 2 Gloo processes: layers unused at a stage don't stall DDP, and the ranks stay identical."""
    from test_ddp import train_two_ranks

    out, steps = train_two_ranks(tmp_path, hf_env, ["--arch", "progressive", "--grow-steps", "1", "--size", "32",
                                                    "--steps", "4"])
    assert steps == [1, 2, 3, 4]
    assert load_generator(str(out), device="cpu").arch == "progressive"


def test_the_train_tab_takes_progressive_growing() -> None:
    config = config_from_widgets({"arch": "progressive", "resolution": "64"})
    assert (config.arch, config.image_size, config.grow_steps) == ("progressive", 64, 0)  # 0: half the run grows
    assert config.validate() is config


# ------------------------------------------------------------------------------- the app
@pytest.fixture(scope="module")
def client(app: AppProcess, tmp_path_factory: pytest.TempPathFactory) -> Client:  # noqa: F811
    return app.client(tmp_path_factory.mktemp("progressive-client"))


@pytest.mark.app
@pytest.mark.timeout(600)
def test_grow_a_gan_through_the_api_then_generate(client: Client, tmp_path: Path) -> None:
    images = write_pngs(tmp_path / "images", 8)
    outputs = named(client.predict(**train_args(images, steps=4, resolution="32", width=16, batch_size=4,
                                                preview_every=10, arch="progressive"), api_name="/train"))
    run = Path(outputs["run_dir"])
    assert json.loads((run / "config.json").read_text())["arch"] == "progressive", outputs["status"]
    state = json.loads((run / "training" / "state.json").read_text())
    assert state["config"]["grow_steps"] == 1  # automatic: 4 steps, 3 smaller resolutions -> 1 each
    gallery, note = client.predict(model=str(run), seed=0, num=1, api_name="/scales")
    assert not gallery and note.startswith("This model was grown progressively"), note


def test_the_train_tab_says_while_it_grows(tmp_path: Path) -> None:
    """The status line of the Train tab (in both languages) names the resolution of the moment while growing."""
    from gandemo.jobs import Job
    from gandemo.ui.train_tab import _View

    trainer = Trainer(coloured_shapes(8, size=32), grow_config(), tmp_path / "status", device="cpu")
    events = list(trainer.train())
    steps = [e for e in events if e.kind in ("step", "preview")]
    assert [e.growing for e in steps] == [4, 4, 8, 8, 16, 16, 0, 0]  # 0: at the output size
    for lang, words in (("en", "growing: now at 8×8 px"), ("vi", "đang tăng trưởng dần: hiện ở 8×8 px")):
        view = _View(Job(kind="train", device="cpu"), lang)
        view.add(steps[2])
        assert words in view.outputs()[0], view.outputs()[0]
        view.add(steps[-1])
        assert "8×8" not in view.outputs()[0] and "px" not in view.outputs()[0]
