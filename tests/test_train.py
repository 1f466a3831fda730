"""The training core on the CPU with tiny settings: the loop, every fix switch, checkpoints, stop and
resume, NaN recovery, the health monitor and DiffAugment.

Everything is 32 px, width 8, batch 8 and a handful of steps, so the file runs in seconds on 2 cores.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from gandemo import cli, load_generator
from gandemo.device import Precision, mixed_precision, native_bfloat16
from gandemo.errors import InvalidInputError, UnsupportedCheckpointError
from gandemo.gan import runs as runs_module
from gandemo.gan import train as train_module
from gandemo.gan.augment import diff_augment, parse_policy
from gandemo.gan.health import HealthMonitor, sample_diversity
from gandemo.gan.runs import CheckpointWriteError
from gandemo.gan.train import TRAINING_DIR, TrainConfig, Trainer, TrainEvent
from gandemo.training import prepare_trainer, steps_for_epochs

SIZE = 32


# ------------------------------------------------------------------------------------- helpers
def coloured_shapes(n: int, channels: int = 3, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    """``n`` images (uint8, N x C x size x size) of one coloured rectangle or disc on a plain background;
    with 4 channels the background is transparent (alpha 0) and the shape opaque."""
    rng = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images = torch.empty(n, channels, size, size, dtype=torch.uint8)
    for i in range(n):
        cy, cx = torch.randint(8, size - 8, (2,), generator=rng).tolist()
        r = int(torch.randint(4, 8, (1,), generator=rng))
        if i % 2:
            inside = (ys - cy) ** 2 + (xs - cx) ** 2 <= r * r
        else:
            inside = ((ys - cy).abs() <= r) & ((xs - cx).abs() <= r // 2 + 2)
        colour = torch.randint(0, 256, (min(channels, 3),), generator=rng, dtype=torch.uint8)
        background = torch.randint(0, 64, (min(channels, 3),), generator=rng, dtype=torch.uint8)
        rgb = torch.where(inside, colour[:, None, None], background[:, None, None])
        if channels == 4:
            alpha = inside.to(torch.uint8) * 255
            images[i] = torch.cat([rgb, alpha[None]])
        else:
            images[i] = rgb
    return images


def gandemo_cli(env: dict[str, str], *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """``python -m gandemo ARGS`` from the repository root in ``env``."""
    return subprocess.run([sys.executable, "-m", "gandemo", *args], cwd=Path(__file__).resolve().parents[1], env=env,
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class CliRun:
    """One ``python -m gandemo train`` of :func:`cli_train`: its process, images, run folder and environment."""

    proc: subprocess.CompletedProcess
    data: Path
    out: Path
    env: dict[str, str]

    def gandemo(self, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        """Another ``python -m gandemo`` command in the same environment."""
        return gandemo_cli(self.env, *args, timeout=timeout)


def cli_train(tmp_path: Path, hf_env: dict[str, str], *options: str) -> CliRun:
    """``gandemo train`` on 8 shape PNGs into ``tmp_path/cli-run`` on the CPU with ``options``, checked to succeed.

    It runs ``gandemo.cli.main`` in this process, so an option's test doesn't pay for a second torch import;
    test_cli_train runs the command as a subprocess. ``CliRun.gandemo`` runs further commands as subprocesses."""
    data = tmp_path / "shapes"
    write_pngs(data, 8)
    out = tmp_path / "cli-run"
    env = {**hf_env, "OMP_NUM_THREADS": "1", "GANDEMO_RUNS_DIR": str(tmp_path / "runs")}
    argv = ["train", str(data), "--out", str(out), "--device", "cpu", "--preview-every", "0", *options]
    said, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(errors):
        code = cli.main(argv)
    assert code == 0, said.getvalue() + errors.getvalue()
    return CliRun(subprocess.CompletedProcess(argv, code, said.getvalue(), errors.getvalue()), data, out, env)


def write_pngs(folder: Path, n: int = 12, channels: int = 3, seed: int = 0) -> list[Path]:
    """``n`` coloured-shape PNGs in ``folder`` (also used by the CLI, app and browser training tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(coloured_shapes(n, channels, seed=seed)):
        path = folder / f"shape-{i:02d}.png"
        Image.fromarray(image.permute(1, 2, 0).numpy(), "RGBA" if channels == 4 else "RGB").save(path)
        paths.append(path)
    return paths


def resumed_like_whole(data: torch.Tensor, config: TrainConfig, tmp_path: Path, stop_at: int = 3,
                       on_resume: Callable[[Trainer], None] | None = None) -> Trainer:
    """Train ``config`` in one go, and again stopped after step ``stop_at``, saved and resumed (``on_resume`` looks
    at the resumed Trainer before it trains on): checks that both end with the same D and EMA of G (a resumed run
    equals an uninterrupted one); returns the resumed Trainer, trained to the end."""
    whole = Trainer(data, config, tmp_path / "whole", device="cpu")
    list(whole.train())
    half = Trainer(data, config, tmp_path / "half", device="cpu")
    for event in half.train():
        if event.step == stop_at:
            break
    half.save()
    resumed = Trainer.resume(tmp_path / "half", data, device="cpu")
    assert resumed.step == stop_at
    if on_resume is not None:
        on_resume(resumed)
    list(resumed.train())
    for a, b in zip(whole.D.state_dict().values(), resumed.D.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(whole.G_ema.state_dict().values(), resumed.G_ema.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    return resumed


def tiny_config(channels: int = 3, **overrides: Any) -> TrainConfig:
    settings: dict[str, Any] = dict(image_size=SIZE, channels=channels, latent_dim=16, width_g=8, width_d=8,
                                    batch_size=8, steps=8, preview_every=4, checkpoint_every=1000, seed=0)
    settings.update(overrides)
    return TrainConfig(**settings)


def run(trainer: Trainer, cancel: threading.Event | None = None) -> list[TrainEvent]:
    return list(trainer.train(cancel))


def step_events(events: Iterable[TrainEvent]) -> list[TrainEvent]:
    return [e for e in events if e.kind in ("step", "preview")]


def all_finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in module.state_dict().values() if t.is_floating_point())


def state_of(trainer_dir: Path) -> dict[str, Any]:
    return json.loads((trainer_dir / TRAINING_DIR / "state.json").read_text())


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def rgb() -> torch.Tensor:
    return coloured_shapes(12, channels=3)


@pytest.fixture(scope="module")
def rgba() -> torch.Tensor:
    return coloured_shapes(12, channels=4, seed=1)


def z(n: int = 4, latent_dim: int = 16, seed: int = 7) -> torch.Tensor:
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------- the loop
@pytest.mark.parametrize("channels", [3, 4])
def test_twenty_steps_give_finite_losses_previews_and_a_checkpoint(channels: int, rgb: torch.Tensor,
                                                                  rgba: torch.Tensor, tmp_path: Path) -> None:
    data = rgb if channels == 3 else rgba
    trainer = Trainer(data, tiny_config(channels, steps=20, preview_every=10), tmp_path / "run", device="cpu")
    before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    events = run(trainer)

    assert [e.kind for e in events][0] == "start" and events[-1].kind == "done", [e.kind for e in events]
    steps = step_events(events)
    assert [e.step for e in steps] == list(range(1, 21))
    for e in steps:
        assert set(e.losses) >= {"loss_d", "loss_g", "d_real", "d_fake"}
        assert all(math.isfinite(v) for v in e.losses.values()), (e.step, e.losses)
        assert 0 <= e.losses["d_real"] <= 1 and 0 <= e.losses["d_fake"] <= 1
        assert e.total_steps == 20 and e.images_per_s > 0 and e.eta_s >= 0
    previews = [e for e in steps if e.kind == "preview"]
    assert [e.step for e in previews] == [10, 20]
    for e in previews:
        assert e.preview is not None and e.preview.mode == ("RGBA" if channels == 4 else "RGB")
        assert e.preview.width == e.preview.height and e.preview.width >= 4 * SIZE
        assert e.diversity is not None and e.diversity >= 0
    assert any(not torch.equal(before[k], v) for k, v in trainer.G.state_dict().items()), "G never changed"
    assert all_finite(trainer.G) and all_finite(trainer.D) and all_finite(trainer.G_ema)

    out = events[-1].checkpoint
    assert out == tmp_path / "run"
    assert {"config.json", "model.safetensors", "README.md", "samples.png"} <= {p.name for p in out.iterdir()}
    state = state_of(out)
    assert state["step"] == 20 and state["config"]["channels"] == channels and len(state["history"]) == 20
    gen = load_generator(str(out), device="cpu")
    assert (gen.image_size, gen.channels, gen.latent_dim) == (SIZE, channels, 16)


FIX_SWITCHES = [
    pytest.param({}, id="defaults"),
    pytest.param({"loss": "hinge"}, id="hinge"),
    pytest.param({"spectral_norm": False}, id="batchnorm-D"),
    pytest.param({"spectral_norm": False, "loss": "hinge"}, id="batchnorm-D-hinge"),
    pytest.param({"diffaugment": ""}, id="no-diffaugment"),
    pytest.param({"diffaugment": "color"}, id="color"),
    pytest.param({"diffaugment": "translation"}, id="translation"),
    pytest.param({"diffaugment": "cutout"}, id="cutout"),
    pytest.param({"r1_gamma": 1.0}, id="r1"),
    pytest.param({"r1_gamma": 1.0, "spectral_norm": False}, id="r1-batchnorm-D"),
    pytest.param({"ema_decay": 0.0}, id="no-ema"),
    pytest.param({"label_smoothing": 1.0, "mirror": False, "d_skip_threshold": 0.0}, id="plain-dcgan"),
]


@pytest.mark.parametrize("switches", FIX_SWITCHES)
def test_every_fix_switch_trains(switches: dict[str, Any], rgb: torch.Tensor, tmp_path: Path) -> None:
    trainer = Trainer(rgb, tiny_config(steps=5, preview_every=5, **switches), tmp_path / "run", device="cpu")
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in trainer.D.modules())
    assert has_bn == (not trainer.config.spectral_norm), "D must use batch norm exactly when spectral norm is off"
    events = run(trainer)
    assert events[-1].kind == "done" and trainer.step == 5
    for e in step_events(events):
        assert all(math.isfinite(v) for v in e.losses.values()), (switches, e.step, e.losses)
    assert all_finite(trainer.G) and all_finite(trainer.D)
    if switches.get("ema_decay") == 0.0:
        for k, v in trainer.G.state_dict().items():
            assert torch.equal(v, trainer.G_ema.state_dict()[k]), f"EMA off: G_ema must equal G ({k})"
    else:
        assert any(not torch.equal(v, trainer.G_ema.state_dict()[k]) for k, v in trainer.G.state_dict().items()
                   if v.is_floating_point()), "EMA on: G_ema should lag behind G"


def test_r1_penalty_runs_every_fourth_step(rgb: torch.Tensor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Trainer(rgb, tiny_config(steps=9, r1_gamma=2.0, d_skip_threshold=0.0), tmp_path / "run", device="cpu")
    calls: list[int] = []
    original = trainer.r1_penalty

    def spy(real: torch.Tensor) -> torch.Tensor:
        calls.append(trainer.step)
        penalty = original(real)
        assert penalty.requires_grad and bool(torch.isfinite(penalty)) and float(penalty.detach()) >= 0
        return penalty

    monkeypatch.setattr(trainer, "r1_penalty", spy)
    run(trainer)
    assert calls == [0, 4, 8]


def test_skip_d_threshold_skips_discriminator_updates(rgb: torch.Tensor, tmp_path: Path) -> None:
    # Any D loss is below 100, so after the first step D is never updated again.
    trainer = Trainer(rgb, tiny_config(steps=6, d_skip_threshold=100.0), tmp_path / "run", device="cpu")
    events = iter(trainer.train())
    assert next(events).kind == "start"
    first = next(events)
    assert first.losses["d_updated"] == 1.0
    d_after_first = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    rest = list(events)
    assert [e.losses["d_updated"] for e in step_events(rest)] == [0.0] * 5
    assert trainer.skipped_d == 5
    for k, v in trainer.D.state_dict().items():
        if not k.endswith(("_u", "_v")):  # spectral norm's power iteration still runs in the forward pass
            assert torch.equal(v, d_after_first[k]), f"D changed while its updates were skipped ({k})"
    assert state_of(rest[-1].checkpoint)["skipped_d"] == 5

    unskipped = Trainer(rgb, tiny_config(steps=6, d_skip_threshold=0.0), tmp_path / "run2", device="cpu")
    run(unskipped)
    assert unskipped.skipped_d == 0


# ------------------------------------------------------------------------------------- checkpoints
def test_real_batches_are_not_flipped_unless_mirror_is_on(rgb: torch.Tensor, tmp_path: Path) -> None:
    def as_set(images: torch.Tensor) -> set[bytes]:
        return {x.numpy().tobytes() for x in images}

    originals, flipped = as_set(rgb), as_set(rgb.flip(3))
    assert not originals & flipped  # the shapes are asymmetric, so a flip is detectable
    for mirror in (False, True):
        trainer = Trainer(rgb, tiny_config(mirror=mirror), tmp_path / f"mirror-{mirror}", device="cpu")
        seen = set()
        for _ in range(6):
            batch = trainer.real_batch().float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
            seen |= as_set(batch.contiguous())
        if mirror:
            assert seen & flipped and seen & originals, "mirror=True should flip about half of the images"
        else:
            assert seen <= originals, "with mirror off (the default) real images are used as they are"
    assert TrainConfig().mirror is False


@pytest.mark.parametrize("amp", [True, False], ids=["amp", "float32"])
def test_precision_policy_keeps_weights_float32(amp: bool, rgb: torch.Tensor, tmp_path: Path) -> None:
    """Mixed precision runs only where the CPU computes bfloat16 natively (AVX512-BF16/AMX); weights,
    optimiser state and the exported checkpoint stay float32 either way."""
    trainer = Trainer(rgb, tiny_config(amp=amp, steps=6), tmp_path / "run", device="cpu")
    assert trainer.amp == (amp and native_bfloat16(torch.device("cpu")))
    if trainer.amp:
        assert trainer.amp_dtype == torch.bfloat16 and not trainer.scaler.is_enabled()
        seen: list[torch.dtype] = []
        conv = next(m for m in trainer.D.modules() if isinstance(m, torch.nn.Conv2d))
        handle = conv.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
        trainer.train_step()
        handle.remove()
        assert seen and set(seen) == {torch.bfloat16}, seen  # convolutions really ran in bfloat16
    events = run(trainer)
    assert events[-1].kind == "done"
    assert ("bfloat16 mixed precision" if trainer.amp else "float32") in events[0].message  # said to the user
    assert all(math.isfinite(v) for e in step_events(events) for v in e.losses.values())
    for net in (trainer.G, trainer.D, trainer.G_ema):
        assert {p.dtype for p in net.parameters()} == {torch.float32}
    assert {v.dtype for st in trainer.opt_g.state.values() for v in st.values() if v.dim() > 0} == {torch.float32}
    gen = load_generator(str(tmp_path / "run"), device="cpu")
    assert {p.dtype for p in gen.module.parameters()} == {torch.float32}
    assert torch.isfinite(gen.sample([0, 1])).all()


def test_the_trainer_takes_its_precision_from_the_device_policy(rgb: torch.Tensor, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """On a GPU without native bfloat16 (a T4) the policy says float16 with a loss scaler, and the trainer
    follows it (it used to ask torch.cuda.is_bf16_supported(), which says yes there by emulation)."""
    asked: list[torch.device] = []

    def t4_policy(device: torch.device) -> Precision:
        asked.append(device)
        return mixed_precision("cuda", (7, 5))

    monkeypatch.setattr(train_module, "mixed_precision_for", t4_policy)
    trainer = Trainer(rgb, tiny_config(steps=2), tmp_path / "run", device="cpu")
    assert asked == [torch.device("cpu")]
    assert trainer.amp and trainer.amp_dtype == torch.float16 and trainer.scaler.is_enabled()
    off = Trainer(rgb, tiny_config(steps=2, amp=False), tmp_path / "off", device="cpu")
    assert not off.amp and not off.scaler.is_enabled() and len(asked) == 1, "amp=False asks nothing: float32"


def test_the_float16_loss_scaler_branch_trains_on_the_cpu(rgb: torch.Tensor, tmp_path: Path) -> None:
    """The branch pre-Ampere GPUs take (float16 autocast + GradScaler), forced on the CPU."""
    trainer = Trainer(rgb, tiny_config(steps=6, r1_gamma=1.0), tmp_path / "run", device="cpu",
                      precision=(torch.float16, True))
    assert trainer.amp and trainer.amp_dtype == torch.float16 and trainer.scaler.is_enabled()
    seen: list[torch.dtype] = []
    conv = next(m for m in trainer.D.modules() if isinstance(m, torch.nn.Conv2d))
    handle = conv.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    events = run(trainer)
    handle.remove()
    assert seen and torch.float16 in seen, seen
    assert events[-1].kind == "done" and "float16 mixed precision with loss scaling" in events[0].message
    assert all(math.isfinite(v) for e in step_events(events) for v in e.losses.values())
    assert all_finite(trainer.G) and all_finite(trainer.D)
    assert {p.dtype for p in trainer.D.parameters()} == {torch.float32}


def _d_gradients(rgb: torch.Tensor, folder: Path, r1_gamma: float,
                 precision: tuple[torch.dtype | None, bool]) -> list[torch.Tensor]:
    """D's gradients (unscaled, as the optimiser used them) after one step that runs R1 (step 0)."""
    trainer = Trainer(rgb, tiny_config(steps=1, r1_gamma=r1_gamma, d_skip_threshold=0.0), folder, device="cpu",
                      precision=precision)
    torch.manual_seed(1234)  # same latents and augmentations in every run
    stats = trainer.train_step()
    assert stats["d_updated"] == 1.0
    return [p.grad.detach().clone() for p in trainer.D.parameters()]


@pytest.mark.parametrize("dtype", [None, torch.float16], ids=["float32", "float16"])
def test_r1_counts_the_same_with_the_loss_scaler(dtype: torch.dtype | None, rgb: torch.Tensor,
                                                 tmp_path: Path) -> None:
    """The R1 penalty's gradient goes through the loss scaler like D's loss: after unscaling, R1's
    contribution to D's gradient is the same with and without the scaler (it used to be divided by the
    loss scale, 65,536 at first, i.e. R1 was off under float16)."""
    contributions = {}
    for scaler in (False, True):
        with_r1 = _d_gradients(rgb, tmp_path / f"r1-{scaler}", 10.0, (dtype, scaler))
        without = _d_gradients(rgb, tmp_path / f"plain-{scaler}", 0.0, (dtype, scaler))
        contributions[scaler] = [a - b for a, b in zip(with_r1, without)]
    plain, scaled = contributions[False], contributions[True]
    size = torch.cat([c.flatten() for c in plain]).norm()
    assert size > 1e-3, "R1 must change D's gradient noticeably for this test to mean something"
    difference = torch.cat([(a - b).flatten() for a, b in zip(scaled, plain)]).norm()
    assert difference <= 1e-3 * size, f"R1's contribution differs under the scaler: {difference} vs {size}"


def test_checkpoint_holds_the_ema_generator_and_loads_with_load_generator(rgb: torch.Tensor, tmp_path: Path) -> None:
    trainer = Trainer(rgb, tiny_config(steps=10, ema_decay=0.9), tmp_path / "run", device="cpu")
    run(trainer)
    gen = load_generator(str(tmp_path / "run"), device="cpu")
    assert gen.layout == "gandemo"
    latents = z()
    with torch.no_grad():
        expected_ema = trainer.G_ema.eval()(latents)
        live = trainer.G.eval()(latents)
    assert torch.allclose(gen(latents), expected_ema, atol=1e-6), "the exported weights must be the EMA generator's"
    assert not torch.allclose(gen(latents), live, atol=1e-4), "the export looks like the live G, not its EMA"
    card = (tmp_path / "run" / "README.md").read_text()
    assert "10 steps" in card and "EMA" in card


def test_save_is_atomic_and_replaces_the_previous_checkpoint(rgb: torch.Tensor, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(system_tmp))
    runs = tmp_path / "runs"
    trainer = Trainer(rgb, tiny_config(steps=3), runs / "run", device="cpu")
    run(trainer)
    assert state_of(runs / "run")["step"] == 3
    first_weights = (runs / "run" / "model.safetensors").read_bytes()

    trainer.config.steps = 6
    run(trainer)
    assert state_of(runs / "run")["step"] == 6
    assert (runs / "run" / "model.safetensors").read_bytes() != first_weights
    assert sorted(p.name for p in runs.iterdir()) == ["run"], "temporary or backup folders were left behind"
    assert list(system_tmp.iterdir()) == [], "temporary files were left in the system temp folder"

    # A save that fails half-way leaves the last good checkpoint as it was, and no debris.
    good = {p.relative_to(runs): p.read_bytes() for p in (runs / "run").rglob("*") if p.is_file()}

    def broken_write(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs_module, "save_file", broken_write)
    trainer.config.steps = 8
    with pytest.raises(CheckpointWriteError, match="the checkpoint of step 6 there is intact"):
        run(trainer)
    assert {p.relative_to(runs): p.read_bytes() for p in (runs / "run").rglob("*") if p.is_file()} == good
    assert sorted(p.name for p in runs.iterdir()) == ["run"]
    assert list(system_tmp.iterdir()) == []
    load_generator(str(runs / "run"), device="cpu")


# ------------------------------------------------------------------------------------- stop & resume
def _adam_state(opt: torch.optim.Optimizer) -> list[dict[str, torch.Tensor]]:
    return [opt.state_dict()["state"][i] for i in sorted(opt.state_dict()["state"])]


def test_stop_writes_a_checkpoint_and_resume_continues_with_optimizer_state(rgb: torch.Tensor, tmp_path: Path) -> None:
    out = tmp_path / "run"
    trainer = Trainer(rgb, tiny_config(steps=12), out, device="cpu")
    cancel = threading.Event()
    events = []
    for event in trainer.train(cancel):
        events.append(event)
        if event.kind in ("step", "preview") and event.step == 5:
            cancel.set()
    assert events[-1].kind == "stopped" and events[-1].step == 5 and events[-1].checkpoint == out, events[-1]
    assert max(e.step for e in events) == 5
    # what G draws at the stop comes with it, though no preview was due (a short run must show a sample)
    assert events[-2].kind == "step" and events[-2].preview is None and events[-1].preview is not None
    assert state_of(out)["step"] == 5 and len(state_of(out)["history"]) == 5
    load_generator(str(out), device="cpu")

    assert Trainer.resume_config(out).steps == 12
    resumed = Trainer.resume(out, rgb, steps=16, device="cpu")
    assert resumed.step == 5 and resumed.config.steps == 16 and len(resumed.history) == 5
    for name in ("opt_g", "opt_d"):
        saved, restored = _adam_state(getattr(trainer, name)), _adam_state(getattr(resumed, name))
        assert len(saved) == len(restored) > 0
        for a, b in zip(saved, restored):
            assert a.keys() == b.keys() and {"exp_avg", "exp_avg_sq", "step"} <= a.keys()
            for key in a:
                assert torch.equal(a[key], b[key]), f"{name} {key} not restored"
    assert torch.equal(resumed._rng.get_state(), trainer._rng.get_state()), "the data-order RNG was not restored"
    assert torch.equal(resumed._order, trainer._order)
    for a, b in ((trainer.G, resumed.G), (trainer.D, resumed.D), (trainer.G_ema, resumed.G_ema)):
        for k, v in a.state_dict().items():
            assert torch.equal(v, b.state_dict()[k]), k

    events = run(resumed)
    assert events[0].kind == "start" and "from step 5" in events[0].message
    assert [e.step for e in step_events(events)] == list(range(6, 17))
    assert events[-1].kind == "done" and events[-1].step == 16
    state = state_of(out)
    assert state["step"] == 16 and [h["step"] for h in state["history"]] == list(range(1, 17))


def test_stop_and_resume_equals_an_uninterrupted_run(rgb: torch.Tensor, tmp_path: Path) -> None:
    whole = Trainer(rgb, tiny_config(steps=12), tmp_path / "whole", device="cpu")
    run(whole)
    parted = Trainer(rgb, tiny_config(steps=12), tmp_path / "parted", device="cpu")
    cancel = threading.Event()
    for event in parted.train(cancel):
        if event.step == 6:
            cancel.set()
    resumed = Trainer.resume(tmp_path / "parted", rgb, device="cpu")
    run(resumed)
    for k, v in whole.G.state_dict().items():
        assert torch.equal(v, resumed.G.state_dict()[k]), k


def test_resume_refuses_a_folder_without_training_state(rgb: torch.Tensor, tmp_path: Path) -> None:
    trainer = Trainer(rgb, tiny_config(steps=2), tmp_path / "run", device="cpu")
    run(trainer)
    exported = tmp_path / "export"
    trainer.G_ema.save_pretrained(exported)
    with pytest.raises(UnsupportedCheckpointError, match="not a resumable"):
        Trainer.resume(exported, rgb)
    with pytest.raises(UnsupportedCheckpointError, match="not a resumable"):
        Trainer.resume_config(exported)


def test_epochs_set_the_length_from_the_usable_images(tmp_path: Path) -> None:
    data = tmp_path / "shapes"
    write_pngs(data, 12)
    (data / "notes.txt").write_text("not an image")  # skipped: epochs count the 12 usable images
    # 2.5 passes over 12 images at batch 8 = 30 images = 3.75 batches -> 4 steps
    trainer, summary = prepare_trainer([data], tiny_config(steps=999), out_dir=tmp_path / "run", device="cpu", epochs=2.5)
    assert summary.startswith("Used 12 of 13 files")
    assert trainer.config.steps == 4
    assert [e.step for e in run(trainer) if e.kind == "done"] == [4]

    # resuming with epochs counts them in total, like --steps: 6 epochs = 72 images = 9 steps
    trainer, _ = prepare_trainer([data], tiny_config(steps=1), resume=tmp_path / "run", device="cpu", epochs=6)
    assert (trainer.step, trainer.config.steps) == (4, 9)
    # fewer epochs than already trained never shortens the saved plan
    trainer, _ = prepare_trainer([data], tiny_config(steps=1), resume=tmp_path / "run", device="cpu", epochs=1)
    assert trainer.config.steps == 4

    assert steps_for_epochs(1, 12, 4) == 3 and steps_for_epochs(0.01, 12, 4) == 1
    for bad in (0, -1, float("nan"), float("inf"), True):
        with pytest.raises(InvalidInputError, match="Epochs must be a positive number"):
            prepare_trainer([tmp_path / "missing"], tiny_config(), device="cpu", epochs=bad)  # before any file is read


# ------------------------------------------------------------------------------------- NaN recovery
def test_injected_nan_is_recovered_with_halved_learning_rates(rgb: torch.Tensor, tmp_path: Path) -> None:
    config = tiny_config(steps=12)
    trainer = Trainer(rgb, config, tmp_path / "run", device="cpu")
    events = []
    for event in trainer.train():
        events.append(event)
        if event.kind in ("step", "preview") and event.step == 4:
            with torch.no_grad():
                next(trainer.G.parameters()).fill_(float("nan"))
    health = [e for e in events if e.kind == "health"]
    assert len(health) == 1, [e.kind for e in events]
    (message,) = health[0].health
    assert message.code == "non_finite" and message.level == "error"
    assert "NaN" in message.text and "halved" in message.text
    assert trainer.recoveries == 1
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(config.lr_g / 2)
    assert trainer.opt_d.param_groups[0]["lr"] == pytest.approx(config.lr_d / 2)
    assert events[-1].kind == "done" and events[-1].step == 12
    assert all_finite(trainer.G) and all_finite(trainer.D) and all_finite(trainer.G_ema)
    for e in step_events(events):
        assert all(math.isfinite(v) for v in e.losses.values())
    assert state_of(tmp_path / "run")["recoveries"] == 1
    gen = load_generator(str(tmp_path / "run"), device="cpu")
    assert bool(torch.isfinite(gen(z())).all())


# ------------------------------------------------------------------------------------- health monitor
def feed(monitor: HealthMonitor, steps: range, d_real: float, d_fake: float) -> list[tuple[int, str]]:
    said = []
    for step in steps:
        said += [(step, m.code) for m in monitor.observe_step(step, d_real, d_fake)]
    return said


def test_health_reports_an_overpowering_discriminator_after_patience_once() -> None:
    monitor = HealthMonitor(real_diversity=1.0, patience=10)
    assert feed(monitor, range(1, 11), 0.99, 0.01) == []  # not before it has lasted `patience` steps
    assert feed(monitor, range(11, 60), 0.99, 0.01) == [(11, "d_overpowering")]  # then once, not every step
    assert feed(monitor, range(60, 120), 0.6, 0.4) == []  # recovers quietly


def test_health_reports_an_overpowering_discriminator_again_after_it_cleared() -> None:
    monitor = HealthMonitor(real_diversity=1.0, patience=5)
    first = feed(monitor, range(1, 30), 0.99, 0.01)
    feed(monitor, range(30, 90), 0.6, 0.4)
    again = feed(monitor, range(90, 200), 0.99, 0.01)
    assert [c for _, c in first] == ["d_overpowering"] and [c for _, c in again] == ["d_overpowering"]
    message = HealthMonitor(real_diversity=1.0, patience=0).observe_step(1, 0.99, 0.01)[0]
    assert message.level == "warning" and "discriminator" in message.text and "Try:" in message.text


def test_health_reports_an_overpowering_generator() -> None:
    monitor = HealthMonitor(real_diversity=1.0, patience=10)
    said = feed(monitor, range(1, 40), 0.5, 0.9)
    assert said == [(11, "g_overpowering")]
    message = HealthMonitor(real_diversity=1.0, patience=0).observe_step(1, 0.5, 0.9)[0]
    assert "generator fools the discriminator" in message.text


def test_health_is_quiet_for_healthy_training() -> None:
    monitor = HealthMonitor(real_diversity=1.0, patience=10)
    assert feed(monitor, range(1, 200), 0.65, 0.35) == []
    # a brief spike shorter than the patience is not reported
    assert feed(monitor, range(200, 205), 1.0, 0.0) == []


def test_health_reports_mode_collapse_when_diversity_falls() -> None:
    rng = torch.Generator().manual_seed(0)
    real = torch.rand(16, 3, SIZE, SIZE, generator=rng) * 2 - 1
    monitor = HealthMonitor(real_diversity=sample_diversity(real))
    varied = torch.rand(16, 3, SIZE, SIZE, generator=rng) * 2 - 1
    ratio, said = monitor.observe_samples(100, varied)
    assert ratio > 0.8 and said == []
    one_image = varied[:1].repeat(16, 1, 1, 1) + 0.01 * torch.randn(16, 3, SIZE, SIZE, generator=rng)
    ratio, said = monitor.observe_samples(200, one_image)
    assert ratio < 0.1
    assert [m.code for m in said] == ["collapse"] and "Mode collapse" in said[0].text
    assert monitor.observe_samples(300, one_image)[1] == [], "collapse must be reported once, not every preview"
    monitor.observe_samples(400, varied)  # diversity is back: the condition clears...
    assert [m.code for m in monitor.observe_samples(500, one_image)[1]] == ["collapse"]  # ...and can be said again


def test_health_says_nothing_about_collapse_for_an_untrained_generator(rgb: torch.Tensor) -> None:
    real = rgb.float().div(127.5).sub(1)
    monitor = HealthMonitor(real_diversity=sample_diversity(real))
    torch.manual_seed(0)
    from gandemo.gan.models import DCGANGenerator

    untrained = DCGANGenerator(SIZE, 3, 16, 8).eval()
    with torch.no_grad():
        samples = untrained(z(16))
    said = []
    for step in range(0, 500, 50):  # an untrained G's samples are alike: low diversity from the start
        ratio, messages = monitor.observe_samples(step, samples)
        said += messages
    # and a generator whose diversity slowly rises from almost nothing is fine too
    base = torch.zeros(16, 3, SIZE, SIZE)
    noise = torch.randn(16, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    rising = HealthMonitor(real_diversity=sample_diversity(real))
    for i in range(1, 10):
        said += rising.observe_samples(i * 50, base + noise * 0.02 * i)[1]
    assert said == []


def test_sample_diversity() -> None:
    same = torch.ones(8, 3, 4, 4)
    assert sample_diversity(same) == 0.0
    assert sample_diversity(same[:1]) == 0.0
    pair = torch.stack([torch.zeros(3, 4, 4), torch.ones(3, 4, 4)])
    assert sample_diversity(pair) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------- DiffAugment
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_diffaugment_keeps_shape_and_dtype(channels: int, policy: str) -> None:
    x = torch.rand(6, channels, SIZE, SIZE) * 2 - 1
    out = diff_augment(x, parse_policy(policy))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert bool(torch.isfinite(out).all())


def test_diffaugment_colour_leaves_alpha_alone() -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 4, SIZE, SIZE) * 2 - 1
    out = diff_augment(x, ("color",))
    assert torch.equal(out[:, 3], x[:, 3]), "colour augmentation changed the alpha channel"
    assert not torch.allclose(out[:, :3], x[:, :3]), "colour augmentation did nothing to RGB"


def test_diffaugment_lets_gradients_flow() -> None:
    torch.manual_seed(0)
    x = (torch.rand(8, 3, SIZE, SIZE) * 2 - 1).requires_grad_(True)
    diff_augment(x, parse_policy("color,translation,cutout")).square().sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all()) and float(x.grad.abs().sum()) > 0


def _is_rectangle(mask: torch.Tensor) -> bool:
    rows, cols = mask.any(1), mask.any(0)
    return bool(torch.equal(mask, rows[:, None] & cols[None, :]))


def test_translation_shifts_by_at_most_an_eighth_and_fills_with_minus_one() -> None:
    torch.manual_seed(0)
    x = torch.ones(64, 3, SIZE, SIZE)
    out = diff_augment(x, ("translation",))
    assert set(out.unique().tolist()) <= {-1.0, 1.0}, "translation must fill with -1 (black in [-1, 1])"
    shifted = 0
    for image in out:
        kept = image[0] == 1
        assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])
        assert _is_rectangle(kept), "the image content must move as one block"
        h, w = int(kept.any(1).sum()), int(kept.any(0).sum())
        assert h >= SIZE - 4 and w >= SIZE - 4, (h, w)
        shifted += (h, w) != (SIZE, SIZE)
    assert shifted > 32, "almost every image should move"
    # the content really moves (not just a border painted over)
    ramp = torch.arange(SIZE, dtype=torch.float32).repeat(SIZE, 1).expand(64, 1, SIZE, SIZE) / SIZE
    moved = diff_augment(ramp, ("translation",))
    assert any(not torch.equal(moved[i][moved[i] >= 0], ramp[i][moved[i] >= 0]) for i in range(64))


def test_cutout_blanks_one_square_of_a_quarter_of_the_image() -> None:
    torch.manual_seed(0)
    x = torch.ones(128, 4, SIZE, SIZE)
    out = diff_augment(x, ("cutout",))
    fractions = []
    for image in out:
        hole = image[0] == 0
        assert all(torch.equal(hole, image[c] == 0) for c in range(4)), "cutout must blank every channel alike"
        assert _is_rectangle(hole)
        fractions.append(float(hole.float().mean()))
    assert max(fractions) == pytest.approx(0.25), "a fully inside hole is (size/2)^2"
    assert min(fractions) >= (SIZE // 4) ** 2 / SIZE**2 - 1e-9, "the hole's centre lies inside the image"
    assert 0.12 < sum(fractions) / len(fractions) <= 0.25


def test_parse_policy() -> None:
    assert parse_policy("color, translation,,cutout ") == ("color", "translation", "cutout")
    assert parse_policy("") == () and parse_policy(["cutout"]) == ("cutout",)
    with pytest.raises(ValueError, match="blur"):
        parse_policy("color,blur")


# ------------------------------------------------------------------------------------- settings
def test_validate_errors_are_human_sentences() -> None:
    with pytest.raises(InvalidInputError) as info:
        TrainConfig(image_size=48, channels=2, steps=0, batch_size=1, lr_g=0.0, beta1=1.0, loss="wgan",
                    label_smoothing=0.2, ema_decay=1.0, width_g=0, r1_gamma=-1, diffaugment="color,blur").validate()
    text = str(info.value)
    assert text.startswith("Invalid training settings: ") and text.endswith(".")
    assert "\n" not in text and "Traceback" not in text
    for part in ("resolution must be 32, 64 or 128 (got 48)", "channels must be 1, 3 or 4 (got 2)",
                 "steps must be between 1 and 1,000,000 (got 0)", "batch size must be between 2 and 1024 (got 1)",
                 "lr_g must be in (0, 0.1] (got 0.0)", "beta1 must be in [0, 1) (got 1.0)",
                 "loss must be 'bce' or 'hinge' (got 'wgan')", "label smoothing", "EMA decay",
                 "widths must be between 1 and 512", "can't be negative", "blur"):
        assert part in text, f"{part!r} missing from: {text}"
    assert tiny_config().validate() == tiny_config()


def test_trainer_explains_data_that_does_not_match_the_settings(rgb: torch.Tensor, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"images are 3x32x32 but the settings ask for 4x32x32"):
        Trainer(rgb, tiny_config(channels=4), tmp_path / "run", device="cpu")
    with pytest.raises(InvalidInputError, match="uint8"):
        Trainer(rgb.float(), tiny_config(), tmp_path / "run", device="cpu")
    with pytest.raises(InvalidInputError, match="resolution must be"):
        Trainer(rgb, tiny_config(image_size=48), tmp_path / "run", device="cpu")


# ------------------------------------------------------------------------------------- the learning rate while it trains
def lrs(trainer: Trainer) -> tuple[float, float]:
    return trainer.opt_g.param_groups[0]["lr"], trainer.opt_d.param_groups[0]["lr"]


def test_learning_rates_change_mid_run_from_another_thread(rgb: torch.Tensor, tmp_path: Path) -> None:
    trainer = Trainer(rgb, tiny_config(steps=8), tmp_path / "run", device="cpu")
    events = []
    for event in trainer.train():
        events.append(event)
        if event.kind in ("step", "preview") and event.step == 3:  # the job's thread is paused here; ask from another
            asked = threading.Thread(target=trainer.set_learning_rates, kwargs={"lr_g": 1e-5})
            asked.start()
            asked.join()
            assert lrs(trainer) == (2e-4, 2e-4), "changed in the middle of a step instead of before the next"
    [change] = [e for e in events if e.kind == "lr"]
    assert change.step == 3 and change.health[0].code == "lr_change" and "from step 4 on" in change.message
    assert "G 2.00e-04 → 1.00e-05, D 2.00e-04 → 2.00e-04" in change.message
    assert lrs(trainer) == (1e-5, 2e-4)
    rows = {h["step"]: (h["lr_g"], h["lr_d"]) for h in trainer.history}
    assert [rows[s] for s in (1, 2, 3)] == [(2e-4, 2e-4)] * 3 and [rows[s] for s in range(4, 9)] == [(1e-5, 2e-4)] * 5
    assert state_of(tmp_path / "run")["lr_changes"] == [
        {"step": 3, "reason": "manual", "factor": None, "lr_g": [2e-4, 1e-5], "lr_d": [2e-4, 2e-4]}]


def test_the_adam_steps_use_the_new_rate(rgb: torch.Tensor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Trainer(rgb, tiny_config(steps=4, ema_decay=0.0), tmp_path / "run", device="cpu")
    used: list[float] = []
    real_step = trainer.opt_g.step

    def spy(*args: Any, **kwargs: Any) -> Any:
        used.append(trainer.opt_g.param_groups[0]["lr"])
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer.opt_g, "step", spy)
    trainer.lower_learning_rates(0.1)  # asked before the first step: applied before it
    run(trainer)
    assert used == pytest.approx([2e-5] * 4)


def test_learning_rate_requests_are_checked(rgb: torch.Tensor, tmp_path: Path) -> None:
    trainer = Trainer(rgb, tiny_config(), tmp_path / "run", device="cpu")
    for bad in (0.0, -1e-4, 0.5, float("nan"), "fast"):
        with pytest.raises(InvalidInputError, match=r"Invalid training settings: lr_d must be in \(0, 0.1\]"):
            trainer.set_learning_rates(lr_d=bad)
    for bad in (0, 1, 2.5, True):
        with pytest.raises(InvalidInputError, match="must be between 0 and 1"):
            trainer.lower_learning_rates(bad)
    assert trainer.set_learning_rates(lr_g=1e-4) == (1e-4, 2e-4)  # what the next step will use
    assert trainer.lower_learning_rates(0.5) == pytest.approx((5e-5, 1e-4))
    assert lrs(trainer) == (2e-4, 2e-4), "applied by the training loop only"


def test_a_learning_rate_change_survives_save_and_resume(rgb: torch.Tensor, tmp_path: Path) -> None:
    out = tmp_path / "run"
    trainer = Trainer(rgb, tiny_config(steps=10), out, device="cpu")
    cancel = threading.Event()
    for event in trainer.train(cancel):
        if event.kind in ("step", "preview") and event.step == 3:
            trainer.lower_learning_rates(0.1)
        if event.kind in ("step", "preview") and event.step == 5:
            cancel.set()
    assert len(state_of(out)["lr_changes"]) == 1

    resumed = Trainer.resume(out, rgb, device="cpu")
    assert lrs(resumed) == pytest.approx((2e-5, 2e-5)), "the resumed run went back to the configured rates"
    assert resumed.config.lr_g == 2e-4  # the setting stays what the run started with
    run(resumed)
    state = state_of(out)
    assert [c["step"] for c in state["lr_changes"]] == [3], "the mark of the change was lost or repeated"
    assert [round(h["lr_g"] / 2e-5, 6) for h in state["history"]] == [10.0] * 3 + [1.0] * 7


@pytest.mark.parametrize("stop_at", [None, 2, 4])
def test_the_lr_drop_schedule_applies_after_its_step_once(stop_at: int | None, rgb: torch.Tensor, tmp_path: Path) -> None:
    out = tmp_path / "run"
    trainer = Trainer(rgb, tiny_config(steps=7, lr_drops=((4, 0.1), (6, 0.5))), out, device="cpu")
    cancel = threading.Event()
    events = []
    for event in trainer.train(cancel):
        events.append(event)
        if event.step == stop_at and event.kind in ("step", "preview"):
            cancel.set()
    if stop_at is not None:
        resumed = Trainer.resume(out, rgb, device="cpu")
        assert resumed.config.lr_drops == ((4, 0.1), (6, 0.5))  # the schedule is part of the saved settings
        events += run(resumed)
    state = state_of(out)
    by_step = {h["step"]: h["lr_g"] for h in state["history"]}
    assert [by_step[s] for s in range(1, 8)] == pytest.approx([2e-4] * 4 + [2e-5] * 2 + [1e-5])
    assert [(c["step"], c["reason"], c["factor"]) for c in state["lr_changes"]] == [(4, "schedule", 0.1),
                                                                                   (6, "schedule", 0.5)]
    assert [e.step for e in events if e.kind == "lr"] == [4, 6]
    assert "lowered by the schedule (×0.1)" in next(e.message for e in events if e.kind == "lr")


@pytest.mark.parametrize("auto", [False, True])
def test_auto_lr_drop_lowers_the_rates_when_the_monitor_sees_oscillation(auto: bool, rgb: torch.Tensor, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def oscillating_after_three_steps(self: HealthMonitor) -> dict[str, float] | None:
        if len(self._recent) < 3:
            return None
        return {"swing": 0.3, "mean": 0.5, "crossings": 1.0, "settling": 1.0, "progress": 1.0}

    monkeypatch.setattr(HealthMonitor, "oscillation", oscillating_after_three_steps)
    trainer = Trainer(rgb, tiny_config(steps=7, auto_lr_drop=auto), tmp_path / "run", device="cpu")
    events = run(trainer)
    warned = [e.step for e in events for h in e.health if h.code == "oscillating"]
    changes = [e for e in events if e.kind == "lr"]
    if auto:  # a drop restarts the window: three more steps before the next
        assert warned == [3, 6] and [e.step for e in changes] == [3, 6]
        assert "automatically" in changes[0].message and lrs(trainer) == pytest.approx((2e-6, 2e-6))
    else:
        assert warned == [3] and changes == [] and lrs(trainer) == (2e-4, 2e-4)


def test_nan_recovery_halves_the_rates_in_use_not_the_snapshots(rgb: torch.Tensor, tmp_path: Path) -> None:
    trainer = Trainer(rgb, tiny_config(), tmp_path / "run", device="cpu")
    trainer.snapshot()
    for group in trainer.opt_g.param_groups + trainer.opt_d.param_groups:
        group["lr"] = 1e-5
    trainer.recover()
    assert lrs(trainer) == (5e-6, 5e-6)


# ------------------------------------------------------------------------------------- oscillating without progress
def feed_series(monitor: HealthMonitor, d_fakes: Iterable[float], losses_g: Iterable[float]) -> list[str]:
    codes = []
    for step, (f, g) in enumerate(zip(d_fakes, losses_g)):
        codes += [h.code for h in monitor.observe_step(step, 0.6, f, g)]
    return codes


def test_oscillation_without_progress_is_reported_once() -> None:
    monitor = HealthMonitor(real_diversity=1.0)
    swinging = [0.8 if s % 2 else 0.2 for s in range(600)]
    assert feed_series(monitor, swinging, [1.0] * 600) == ["oscillating"]
    monitor.restart_oscillation()
    assert monitor.oscillation() is None and feed_series(monitor, swinging[:199], [1.0] * 199) == []


@pytest.mark.parametrize("case", ["healthy noise", "settling", "drifting", "g improving"])
def test_oscillation_is_not_reported_for(case: str) -> None:
    gen = torch.Generator().manual_seed(0)
    noise = (torch.randn(400, generator=gen) * 0.03).tolist()
    wave = [0.3 if s % 2 else -0.3 for s in range(400)]
    d_fakes = {
        "healthy noise": [0.35 + n for n in noise],
        "settling": [0.5 + w * (1 - s / 400) ** 3 for s, w in enumerate(wave)],
        "drifting": [0.1 + 0.8 * s / 400 for s in range(400)],
        "g improving": [0.5 + w for w in wave],
    }[case]
    losses_g = [2.0 - 1.5 * s / 400 for s in range(400)] if case == "g improving" else [1.0] * 400
    assert feed_series(HealthMonitor(real_diversity=1.0), d_fakes, losses_g) == []


def test_resuming_adds_the_learning_rate_drops_asked_for_now(tmp_path: Path) -> None:
    write_pngs(tmp_path / "shapes", 12)
    sources = [str(tmp_path / "shapes")]
    trainer, _ = prepare_trainer(sources, tiny_config(steps=3, lr_drops=((1, 0.5),)), out_dir=tmp_path / "run",
                                 device="cpu")
    run(trainer)
    resumed, _ = prepare_trainer(sources, tiny_config(steps=6, lr_drops=((4, 0.1),), auto_lr_drop=True),
                                 resume=tmp_path / "run", device="cpu")
    assert resumed.config.lr_drops == ((1, 0.5), (4, 0.1)) and resumed.config.auto_lr_drop
    run(resumed)
    assert [(c["step"], c["factor"]) for c in state_of(tmp_path / "run")["lr_changes"]] == [(1, 0.5), (4, 0.1)]
    assert lrs(resumed) == pytest.approx((1e-5, 1e-5))
