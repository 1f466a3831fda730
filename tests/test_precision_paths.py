"""The GPU's precision paths, run on the CPU through the real code (issue 10 §6).

A pre-Ampere GPU (T4, V100) trains in float16 with a GradScaler, an Ampere+ GPU in bfloat16 without one
(gandemo.device.mixed_precision). No GPU runs here, but torch's CPU autocast computes float16 and
bfloat16 convolutions and ``torch.amp.GradScaler("cpu")`` scales, unscales, skips and adapts exactly as
on CUDA. ``$GANDEMO_PRECISION`` (fp16 | bf16 | fp32) forces a precision through the same policy function
the Trainer, a resumed run and the style transfer ask, so these tests go through the real Trainer
(no ``precision=`` override): the scaler really scales D's and G's gradients (R1's too), an overflow skips
the step and halves the scale, the scale grows after clean steps, the checkpoint saves and resumes.
scripts/gpu_check.py checks the same paths on a real GPU.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from gandemo import load_generator
from gandemo.device import FORCED_PRECISIONS, Precision, forced_precision, mixed_precision_for
from gandemo.gan.train import TrainConfig, Trainer
from gandemo.style import StyleSettings, VGGFeatures, stylize
from gandemo.style.optimize import choose_precision
from gandemo.style.vgg import random_vgg19_state_dict

SIZE = 32
pytestmark = pytest.mark.usefixtures("one_thread")


def shapes(n: int = 12, seed: int = 0) -> torch.Tensor:
    """``n`` RGB uint8 images of a bright square on a dark background, at random places."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 40, (n, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)
    for i in range(n):
        y, x = torch.randint(0, SIZE - 10, (2,), generator=g).tolist()
        images[i, :, y:y + 10, x:x + 10] = torch.randint(120, 256, (3, 1, 1), generator=g, dtype=torch.uint8)
    return images


def tiny(**overrides: object) -> TrainConfig:
    settings: dict[str, object] = dict(image_size=SIZE, channels=3, latent_dim=16, width_g=8, width_d=8, batch_size=8,
                                       steps=6, preview_every=0, checkpoint_every=1000, seed=0, d_skip_threshold=0.0)
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def conv_dtypes(module: torch.nn.Module) -> tuple[list[torch.dtype], torch.utils.hooks.RemovableHandle]:
    """The output dtypes of ``module``'s first convolution, recorded from now on (and the hook's handle)."""
    seen: list[torch.dtype] = []
    conv = next(m for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    return seen, conv.register_forward_hook(lambda m, i, out: seen.append(out.dtype))


def finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in module.state_dict().values() if t.is_floating_point())


def set_scaler(trainer: Trainer, **values: float) -> None:
    """Change the GradScaler's scale / growth interval through its public state (as a checkpoint would)."""
    state = trainer.scaler.state_dict()
    state.update(values)
    trainer.scaler.load_state_dict(state)


# ------------------------------------------------------------------------------------- the switch
@pytest.mark.parametrize("name", ["fp16", "bf16", "fp32", "FP16 "])
def test_gandemo_precision_forces_the_policy_on_any_device(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANDEMO_PRECISION", name)
    expected = FORCED_PRECISIONS[name.strip().lower()]
    assert forced_precision() == expected
    assert mixed_precision_for(torch.device("cpu")) == expected
    assert mixed_precision_for(torch.device("meta")) == expected  # not only where the hardware has it


def test_unset_or_auto_leaves_the_hardware_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GANDEMO_PRECISION", raising=False)
    hardware = mixed_precision_for(torch.device("cpu"))
    assert forced_precision() is None
    monkeypatch.setenv("GANDEMO_PRECISION", "auto")
    assert forced_precision() is None and mixed_precision_for(torch.device("cpu")) == hardware
    monkeypatch.setenv("GANDEMO_PRECISION", "fp8")
    with pytest.raises(ValueError, match="GANDEMO_PRECISION must be auto, fp16, bf16 or fp32"):
        mixed_precision_for(torch.device("cpu"))


def test_amp_off_stays_float32_whatever_is_forced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANDEMO_PRECISION", "fp16")
    trainer = Trainer(shapes(), tiny(amp=False), tmp_path / "run", device="cpu")
    assert not trainer.amp and not trainer.scaler.is_enabled()


# ------------------------------------------------------------------------------------- float16 + GradScaler
def test_float16_scales_every_gradient_r1_included(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gradients that reach D's and G's weights during backward (D's: its loss and R1's penalty, two
    passes) are the scale times what the optimisers get: scaled, then unscaled before the step."""
    monkeypatch.setenv("GANDEMO_PRECISION", "fp16")
    trainer = Trainer(shapes(), tiny(r1_gamma=10.0), tmp_path / "run", device="cpu")
    assert trainer.amp and trainer.amp_dtype == torch.float16 and trainer.scaler.is_enabled()
    d_weight = next(p for p in trainer.D.parameters() if p.dim() == 4)
    g_weight = next(p for p in trainer.G.parameters() if p.dim() == 4)
    raw: dict[str, list[torch.Tensor]] = {"D": [], "G": []}
    hooks = [d_weight.register_hook(lambda g: raw["D"].append(g.detach().clone())),
             g_weight.register_hook(lambda g: raw["G"].append(g.detach().clone()))]
    dtypes, conv_hook = conv_dtypes(trainer.D)
    scale = trainer.scaler.get_scale()
    stats = trainer.train_step()  # step 0: lazy R1 runs
    for h in (*hooks, conv_hook):
        h.remove()
    assert scale == 2.0 ** 16 and torch.float16 in dtypes
    assert stats["d_updated"] == 1.0 and all(math.isfinite(v) for v in stats.values())
    assert len(raw["D"]) == 2, "D's weight gets two backward passes: D's loss and R1's penalty"
    assert len(raw["G"]) == 1
    for name, weight in (("D", d_weight), ("G", g_weight)):
        scaled = torch.stack(raw[name]).sum(0)
        assert torch.isfinite(scaled).all() and torch.isfinite(weight.grad).all()
        ratio = scaled.norm() / weight.grad.norm()
        assert ratio == pytest.approx(scale, rel=1e-3), f"{name}'s gradient was scaled by {ratio}, not {scale}"
    assert trainer.scaler.get_scale() == scale, "no overflow: the scale stays until the growth interval"


def test_r1_is_scaled_not_dropped_under_float16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """R1's gradient, unscaled, is as large as in float32 (it used to be divided by 65,536)."""
    contribution = {}
    for name in ("fp32", "fp16"):
        monkeypatch.setenv("GANDEMO_PRECISION", name)
        grads = []
        for gamma in (10.0, 0.0):
            trainer = Trainer(shapes(), tiny(r1_gamma=gamma), tmp_path / f"{name}-{gamma}", device="cpu")
            torch.manual_seed(99)
            trainer.train_step()
            grads.append(torch.cat([p.grad.flatten() for p in trainer.D.parameters()]))
        contribution[name] = (grads[0] - grads[1]).norm().item()
    assert contribution["fp32"] > 1e-3
    assert contribution["fp16"] == pytest.approx(contribution["fp32"], rel=0.05), contribution


def test_an_overflow_skips_the_step_and_halves_the_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a loss scale far beyond float16's range the scaled gradients overflow: the scaler skips both
    optimiser steps (the weights stay as they were, finite) and halves the scale, as on a GPU."""
    monkeypatch.setenv("GANDEMO_PRECISION", "fp16")
    trainer = Trainer(shapes(), tiny(), tmp_path / "run", device="cpu")
    set_scaler(trainer, scale=2.0 ** 40)
    before = {n: {k: v.clone() for k, v in net.state_dict().items()} for n, net in (("G", trainer.G), ("D", trainer.D))}
    stats = trainer.train_step()
    assert all(math.isfinite(v) for v in stats.values()), "the losses are computed before the backward"
    assert trainer.scaler.get_scale() == 2.0 ** 39
    for name, net in (("G", trainer.G), ("D", trainer.D)):
        weights = {k: v for k, v in net.state_dict().items() if "weight" in k and "_u" not in k and "_v" not in k}
        assert weights and all(torch.equal(v, before[name][k]) for k, v in weights.items()), f"{name} was stepped"
    assert finite(trainer.G) and finite(trainer.D)


def test_the_scale_grows_after_clean_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANDEMO_PRECISION", "fp16")
    trainer = Trainer(shapes(), tiny(), tmp_path / "run", device="cpu")
    set_scaler(trainer, scale=256.0, growth_interval=2)
    for _ in range(4):
        trainer.train_step()
    assert trainer.scaler.get_scale() == 1024.0, "doubled after every 2 steps without inf/NaN"


def test_float16_trains_saves_and_resumes_through_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop as the CLI and the Train tab run it, then a resume (which asks the policy again)."""
    monkeypatch.setenv("GANDEMO_PRECISION", "fp16")
    out = tmp_path / "run"
    trainer = Trainer(shapes(), tiny(steps=6, r1_gamma=1.0, checkpoint_every=3), out, device="cpu")
    events = list(trainer.train())
    assert "float16 mixed precision with loss scaling" in events[0].message
    assert events[-1].kind == "done" and trainer.step == 6 and trainer.recoveries == 0
    assert all(math.isfinite(v) for e in events if e.kind == "step" for v in e.losses.values())
    assert {p.dtype for p in trainer.G.parameters()} == {torch.float32}, "weights stay float32"
    gen = load_generator(str(out), device="cpu")
    assert torch.isfinite(gen.sample([0, 1, 2])).all()

    resumed = Trainer.resume(out, shapes(), steps=10, device="cpu")
    assert resumed.step == 6 and resumed.amp_dtype == torch.float16 and resumed.scaler.is_enabled()
    dtypes, hook = conv_dtypes(resumed.D)
    more = list(resumed.train())
    hook.remove()
    assert more[-1].kind == "done" and resumed.step == 10 and torch.float16 in dtypes
    assert all(math.isfinite(v) for e in more if e.kind == "step" for v in e.losses.values())
    assert finite(resumed.G) and finite(resumed.D) and finite(resumed.G_ema)


def test_the_loss_scale_survives_a_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANDEMO_PRECISION", "fp16")
    out = tmp_path / "run"
    trainer = Trainer(shapes(), tiny(steps=2), out, device="cpu")
    set_scaler(trainer, scale=512.0)  # as if the run had adapted its scale
    list(trainer.train())
    resumed = Trainer.resume(out, shapes(), steps=4, device="cpu")
    assert resumed.scaler.get_scale() == trainer.scaler.get_scale()


@pytest.mark.parametrize("arch", ["dcgan", "msg", "progressive"])
def test_the_cuda_memory_layout_trains_too(arch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On CUDA the Trainer keeps G, D and the real batches channels-last (NHWC); on the CPU it doesn't. The
    same layout, set here the way the constructor sets it on a GPU, trains under float16 + GradScaler + R1
    (DCGAN, MSG-GAN's image pyramid and a growing network) with finite losses and weights, and saves a loadable checkpoint."""
    monkeypatch.setenv("GANDEMO_PRECISION", "fp16")
    out = tmp_path / arch
    trainer = Trainer(shapes(), tiny(arch=arch, steps=5, r1_gamma=1.0), out, device="cpu")
    assert not trainer.channels_last, "the CPU default: NCHW"
    trainer.channels_last = True  # what Trainer.__init__ does when the device is CUDA
    for net in (trainer.G, trainer.D, trainer.G_ema):
        net.to(memory_format=torch.channels_last)  # in place: the optimisers keep the same parameters
    assert trainer.opt_g.param_groups[0]["params"][0] is next(trainer.G.parameters())
    assert next(p for p in trainer.D.parameters() if p.dim() == 4).is_contiguous(memory_format=torch.channels_last)
    assert trainer.real_batch().is_contiguous(memory_format=torch.channels_last)
    events = list(trainer.train())
    assert events[-1].kind == "done" and trainer.recoveries == 0
    assert all(math.isfinite(v) for e in events if e.kind == "step" for v in e.losses.values())
    assert finite(trainer.G) and finite(trainer.D)
    assert torch.isfinite(load_generator(str(out), device="cpu").sample([0, 1])).all()


# ------------------------------------------------------------------------------------- bfloat16
def test_bfloat16_autocast_without_a_scaler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What an Ampere+ GPU runs (and CPUs with native bf16): bfloat16 convolutions, no loss scaler,
    float32 weights and optimiser state, a checkpoint that loads."""
    monkeypatch.setenv("GANDEMO_PRECISION", "bf16")
    out = tmp_path / "run"
    trainer = Trainer(shapes(), tiny(steps=5, r1_gamma=1.0), out, device="cpu")
    assert trainer.amp and trainer.amp_dtype == torch.bfloat16 and not trainer.scaler.is_enabled()
    g_seen, g_hook = conv_dtypes(trainer.G)
    d_seen, d_hook = conv_dtypes(trainer.D)
    events = list(trainer.train())
    g_hook.remove()
    d_hook.remove()
    assert "bfloat16 mixed precision from step 0" in events[0].message
    assert set(g_seen) == {torch.bfloat16} and torch.bfloat16 in d_seen
    assert events[-1].kind == "done" and trainer.recoveries == 0
    assert all(math.isfinite(v) for e in events if e.kind == "step" for v in e.losses.values())
    assert {v.dtype for st in trainer.opt_d.state.values() for v in st.values() if v.dim() > 0} == {torch.float32}
    assert torch.isfinite(load_generator(str(out), device="cpu").sample([0, 1])).all()


def test_forced_float32_really_is_float32(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANDEMO_PRECISION", "fp32")
    trainer = Trainer(shapes(), tiny(steps=2), tmp_path / "run", device="cpu")
    seen, hook = conv_dtypes(trainer.G)
    trainer.train_step()
    hook.remove()
    assert not trainer.amp and set(seen) == {torch.float32}


# ------------------------------------------------------------------------------------- style transfer
@pytest.fixture(scope="module")
def vgg() -> VGGFeatures:
    state = random_vgg19_state_dict(seed=0, with_classifier=False)
    convs = [(state[f"features.{i}.weight"], state[f"features.{i}.bias"])
             for i in sorted({int(k.split(".")[1]) for k in state})]
    return VGGFeatures(convs)


def test_style_precision_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.delenv("GANDEMO_PRECISION", raising=False)
    assert choose_precision(cpu, "float16") == torch.float16
    assert choose_precision(cpu, "bfloat16") == torch.bfloat16
    assert choose_precision(cpu, "float32") is None
    for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16), ("fp32", None)):
        monkeypatch.setenv("GANDEMO_PRECISION", name)
        assert choose_precision(cpu, "auto") == dtype, "auto follows $GANDEMO_PRECISION"
        assert choose_precision(cpu, "float32") is None, "an explicit choice beats the variable"
    StyleSettings(precision="float16").validate()


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_style_transfer_runs_its_network_in_reduced_precision(precision: str, vgg: VGGFeatures) -> None:
    """The network's steps in float16/bfloat16 (autocast), targets and losses in float32: a finite result
    whose loss went down, as in float32."""
    content = Image.new("RGB", (48, 40), (200, 60, 40))
    content.paste((20, 40, 220), (10, 8, 30, 30))
    style = Image.effect_noise((40, 40), 60).convert("RGB")
    seen, hook = conv_dtypes(vgg)
    settings = StyleSettings(size=48, steps=4, preview_every=0, precision=precision)  # type: ignore[arg-type]
    events = list(stylize(content, [style], settings, device="cpu", vgg=vgg))
    hook.remove()
    dtype = torch.float16 if precision == "float16" else torch.bfloat16
    assert dtype in seen and torch.float32 in seen, "steps in reduced precision, targets in float32"
    last = events[-1]
    assert last.done and last.image is not None and last.image.size == (48, 40)
    first = next(e for e in events if e.step == 1)
    assert math.isfinite(last.total_loss) and last.total_loss < first.total_loss


def test_precision_named_in_the_policy_is_a_precision() -> None:
    assert set(FORCED_PRECISIONS) == {"fp16", "bf16", "fp32"}
    assert all(isinstance(p, Precision) for p in FORCED_PRECISIONS.values())
    assert FORCED_PRECISIONS["fp16"].scaler and not FORCED_PRECISIONS["bf16"].scaler
