"""GPU check: run every CUDA path of gandemo once and print one table (issue 10 §6).

NEEDS: Python >= 3.11 with requirements.txt installed: torch (a CUDA build for --device cuda), torchvision,
gradio 6.31 + gradio_client (the /generate row starts app.py), numpy, pillow, pyyaml, safetensors,
huggingface_hub, pandas; and pytest (tests/app_harness.py, reused to start the app, imports it). A missing
package stops the script at once with one line naming it (exit status 2). On the `device` tool's machine
use scripts/gpu_check.sh, which installs the missing ones from carried wheels. NO NETWORK: the app runs
with HF_HUB_OFFLINE=1 and the bundled model, VGG19 is randomly initialised (timing doesn't depend on the
values), training images are drawn here.

    python scripts/gpu_check.py --json $OUT/gpu_check.json              # about 3-4 minutes on one H200
    python scripts/gpu_check.py --device cpu --quick --json /tmp/g.json  # what tests/test_gpu_check.py runs

Rows (each with the peak GPU memory torch allocated during it, reset per row, and its own checks):

* training at 32, 64 and 128 px: the real Trainer (defaults, precision from gandemo.device's policy) vs the
  PyTorch DCGAN tutorial's loop (benchmarks/train_throughput.tutorial_runner: ImageFolder over PNGs,
  DataLoader, no AMP) on the same device, images/s, sequentially (the machine is otherwise idle).
  Checks: finite losses, no NaN recovery, the policy's dtype really reached the convolutions, weights moved,
  the preview's shape, a checkpoint saved and loaded back onto the device.
* float16 + GradScaler with R1 (the pre-Ampere path, forced), and float32 (amp off), at 64 px: scaler
  enabled and its scale finite, overflow-skipped steps counted (fewer than half), R1's double backward.
* MSG-GAN at 128 px (TrainConfig.arch = "msg", when this checkout has it; "not built" otherwise).
* progressive growing at 128 px (TrainConfig.arch = "progressive"), one step per smaller resolution.
* style transfer at 512 px, L-BFGS, in bfloat16, float16 and float32: s/step after the first step;
  checks: the dtype reached VGG's convolutions, the loss went down and is finite, the output's size.
* /generate through gradio_client, app.py in a subprocess on 127.0.0.1 with GANDEMO_DEVICE set to the
  device: p50/p95 over --calls calls (64 images, a new seed each call, so no cache hit); checks: the grid
  arrives with the right size, the app's process holds GPU memory (nvidia-smi, else the device's free memory).
* DDP with NCCL: ``torchrun --nproc_per_node=N -m gandemo train`` when >= 2 GPUs and this checkout's
  trainer speaks torch.distributed; skipped otherwise, with the reason.

Exit status: 0 when every row that ran passed its checks; 1 when one failed (after the table); 2 when a
package is missing. ``--json PATH`` also writes the table and the raw numbers there.
"""

from __future__ import annotations

import importlib.util
import sys

NEEDED = {"torch": "torch", "torchvision": "torchvision", "gradio": "gradio", "gradio_client": "gradio_client",
          "numpy": "numpy", "PIL": "pillow", "yaml": "pyyaml", "safetensors": "safetensors",
          "huggingface_hub": "huggingface_hub", "pandas": "pandas", "pytest": "pytest"}


def _absent(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a broken install counts as missing
        return True


_missing = [pip for module, pip in NEEDED.items() if _absent(module)]
if _missing:
    print(f"gpu_check: missing Python packages: {', '.join(_missing)} (pip install -r requirements-dev.txt; "
          "on the device machine run scripts/gpu_check.sh, which installs them from carried wheels)", file=sys.stderr)
    sys.exit(2)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
for _p in (REPO, REPO / "benchmarks", REPO / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from train_throughput import BATCH, tutorial_runner, write_pngs  # noqa: E402

from gandemo.device import Precision, mixed_precision_for  # noqa: E402
from gandemo.gan.train import TrainConfig, Trainer  # noqa: E402
from gandemo.generator import load_generator  # noqa: E402
from gandemo.intake import IntakeOptions, load_images  # noqa: E402
from gandemo.style import StyleSettings, load_vgg19, stylize  # noqa: E402
from gandemo.style.optimize import choose_precision  # noqa: E402
from gandemo.style.vgg import random_vgg19_state_dict  # noqa: E402

SIZES = (32, 64, 128)
STYLE_PRECISIONS = ("float32", "bfloat16", "float16")  # float32 first: the others' baseline
HEADERS = ["row", "precision", "result", "baseline (same run)", "vs baseline", "peak GPU MiB", "checks", "status"]


class CheckFailed(AssertionError):
    """A CUDA path ran but gave a wrong result (non-finite loss, wrong shape, scaler unused, ...)."""


def check(ok: object, what: str) -> None:
    if not ok:
        raise CheckFailed(what)


@dataclasses.dataclass
class Row:
    name: str
    status: str = "ok"  # ok | FAIL | skipped | not built
    precision: str = ""
    result: str = ""
    baseline: str = ""
    ratio: str = ""
    peak_mib: float | None = None
    checks: list[str] = dataclasses.field(default_factory=list)
    reason: str = ""  # why it failed or was skipped
    seconds: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time (the app's and DataLoader workers' not included)
    numbers: dict[str, Any] = dataclasses.field(default_factory=dict)

    def passed(self, what: str) -> None:
        self.checks.append(what)

    def cells(self) -> list[str]:
        peak = "n/a" if self.peak_mib is None else f"{self.peak_mib:,.0f}"
        checks = "; ".join(self.checks)
        status = {"ok": "ok", "FAIL": f"**FAIL**: {self.reason}"}.get(self.status, f"{self.status}: {self.reason}")
        return [self.name, self.precision, self.result, self.baseline, self.ratio, peak, checks, status]


# ----------------------------------------------------------------------------- the run's context


@dataclasses.dataclass
class Context:
    args: argparse.Namespace
    device: torch.device
    work: Path
    deadline: float
    rates: dict[str, float] = dataclasses.field(default_factory=dict)  # "ours 128" -> img/s, for later ratios
    _pngs: dict[int, Path] = dataclasses.field(default_factory=dict)
    _data: dict[int, torch.Tensor] = dataclasses.field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def pngs(self, size: int) -> Path:
        """A folder of PNGs at 2x ``size`` (ImageFolder layout), written once per size."""
        if size not in self._pngs:
            folder = self.work / f"png{size}"
            write_pngs(folder, self.args.images, size * 2)
            self._pngs[size] = folder
        return self._pngs[size]

    def data(self, size: int) -> torch.Tensor:
        """The same PNGs through gandemo's intake: uint8 (N, 3, size, size) on the CPU."""
        if size not in self._data:
            options = IntakeOptions(size=size, channels=3, fit="crop", device="cpu")
            self._data[size] = load_images(str(self.pngs(size)), options).images
        return self._data[size]


def precision_name(p: Precision | torch.dtype | None) -> str:
    dtype = p.dtype if isinstance(p, Precision) else p
    name = {torch.float16: "fp16", torch.bfloat16: "bf16", None: "fp32", torch.float32: "fp32"}[dtype]
    return name + (" + GradScaler" if isinstance(p, Precision) and p.scaler else "")


@contextlib.contextmanager
def peak_memory(ctx: Context, row: Row) -> Iterator[None]:
    if ctx.cuda:
        torch.cuda.synchronize(ctx.device)
        torch.cuda.reset_peak_memory_stats(ctx.device)
    try:
        yield
    finally:
        # (the /generate row reports its app's process instead; a skipped row ran nothing)
        if ctx.cuda and row.peak_mib is None and row.status not in ("skipped", "not built"):
            torch.cuda.synchronize(ctx.device)
            row.peak_mib = torch.cuda.max_memory_allocated(ctx.device) / 2**20


def run_row(ctx: Context, rows: list[Row], name: str, fn: Callable[[Context, Row], None]) -> Row:
    row = Row(name)
    rows.append(row)
    if time.monotonic() > ctx.deadline:
        row.status, row.reason = "skipped", f"the {ctx.args.budget_s:.0f} s time budget was spent"
        return row
    t0, c0 = time.monotonic(), time.process_time()
    print(f"[gpu_check] {name} ...", flush=True)
    try:
        with peak_memory(ctx, row):
            fn(ctx, row)
    except CheckFailed as e:
        row.status, row.reason = "FAIL", str(e)
    except Exception as e:  # a crash in a CUDA path is what this script is for: report it in the table
        traceback.print_exc()
        row.status, row.reason = "FAIL", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    row.seconds, row.cpu_s = time.monotonic() - t0, time.process_time() - c0
    print(f"[gpu_check] {name}: {row.status} {row.result} {row.reason} ({row.seconds:.1f} s, CPU {row.cpu_s:.1f} s)",
          flush=True)
    return row


def skip(row: Row, reason: str, status: str = "skipped") -> None:
    row.status, row.reason = status, reason


# ----------------------------------------------------------------------------- timing


def images_per_s(ctx: Context, steps: Iterator[int], warmup: int, seconds: float, min_steps: int) -> tuple[float, int]:
    """Warm up, then train until ``seconds`` have passed (at least ``min_steps``); (img/s, timed steps)."""
    for _ in range(warmup):
        next(steps)
    ctx.sync()
    t0, images, n = time.perf_counter(), 0, 0
    while n < min_steps or time.perf_counter() - t0 < seconds:
        images += next(steps)
        n += 1
    ctx.sync()
    return images / (time.perf_counter() - t0), n


def trainer_steps(trainer: Trainer, events: list[Any], scales: list[float]) -> Iterator[int]:
    """One training step per ``next()`` (its batch size), through ``Trainer.train()`` as the app runs it;
    every event is kept for the checks, and the loss scale after every step when the scaler is on (the
    loop reads the losses every step anyway, so reading the scale adds no synchronisation)."""
    for event in trainer.train():
        events.append(event)
        if event.kind in ("step", "preview"):
            if trainer.scaler.is_enabled():
                scales.append(trainer.scaler.get_scale())
            yield trainer.config.batch_size


def conv_dtypes(module: torch.nn.Module) -> tuple[list[torch.dtype], Any]:
    """The output dtypes of every convolution of ``module`` that runs (a growing network uses only some),
    and a handle whose ``remove()`` stops recording."""
    seen: list[torch.dtype] = []
    hooks = [m.register_forward_hook(lambda m, i, out: seen.append(out.dtype)) for m in module.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    return seen, types.SimpleNamespace(remove=lambda: [h.remove() for h in hooks])


def new_trainer(ctx: Context, size: int, out: str, precision: Precision | None = None, **overrides: Any) -> Trainer:
    settings: dict[str, Any] = dict(image_size=size, channels=3, batch_size=ctx.args.batch, width_g=ctx.args.width,
                                    width_d=ctx.args.width, steps=1_000_000, seed=0, preview_every=0,
                                    checkpoint_every=0, checkpoint_minutes=0.0)
    settings.update(overrides)
    return Trainer(ctx.data(size), TrainConfig(**settings), ctx.work / out, device=ctx.device, precision=precision)


def train_and_check(ctx: Context, row: Row, trainer: Trainer, expected: Precision) -> tuple[float, list[Any]]:
    """Time ``trainer`` and check what a CUDA path can get wrong; returns (img/s, events)."""
    cfg, size = trainer.config, trainer.config.image_size
    check(trainer.amp_dtype == (expected.dtype or torch.float32) and trainer.scaler.is_enabled() == expected.scaler,
          f"the trainer chose {precision_name(Precision(trainer.amp_dtype if trainer.amp else None, trainer.scaler.is_enabled()))}, "
          f"expected {precision_name(expected)}")
    row.passed(f"precision {precision_name(expected)}")
    before = [p.detach().clone() for p in trainer.G.parameters()]
    events: list[Any] = []
    scales = [trainer.scaler.get_scale()] if expected.scaler else []
    steps = trainer_steps(trainer, events, scales)
    g_seen, g_hook = conv_dtypes(trainer.G)
    d_seen, d_hook = conv_dtypes(trainer.D)
    next(steps)
    g_hook.remove()
    d_hook.remove()
    want = expected.dtype or torch.float32
    check(g_seen and set(g_seen) == {want} and want in d_seen,
          f"convolutions ran in {sorted({str(d) for d in g_seen + d_seen})}, not {want}")
    row.passed(f"convs in {precision_name(expected.dtype)}")
    rate, n = images_per_s(ctx, steps, ctx.args.warmup, ctx.args.seconds, ctx.args.min_steps)
    row.numbers.update(steps_timed=n, batch=cfg.batch_size)
    losses = [v for e in events if e.kind in ("step", "preview") for v in e.losses.values()]
    check(losses and all(math.isfinite(v) for v in losses), "a loss was NaN or inf")
    check(trainer.recoveries == 0 and not any(e.kind == "health" and "NaN" in e.message for e in events),
          f"{trainer.recoveries} NaN/inf recoveries")
    row.passed(f"{sum(e.kind in ('step', 'preview') for e in events)} steps' losses finite")
    moved = sum(not torch.equal(a, b) for a, b in zip(before, trainer.G.parameters()))
    check(moved > 0, "G's weights never changed: every optimiser step was skipped")
    if expected.scaler:
        # the scale halves after each step whose scaled gradients overflowed (that step is skipped)
        overflows = sum(b < a for a, b in zip(scales, scales[1:]))
        check(all(math.isfinite(s) and s >= 1 for s in scales), f"loss scale went {min(scales):g}..{max(scales):g}")
        check(overflows < len(scales) // 2, f"{overflows} of {len(scales) - 1} steps overflowed and were skipped")
        row.numbers.update(loss_scale_start=scales[0], loss_scale_end=scales[-1], overflow_steps=overflows)
        row.passed(f"GradScaler on: scale {scales[0]:g} -> {scales[-1]:g}, {overflows} overflow step(s) skipped")
    _, samples = trainer.preview()
    check(tuple(samples.shape) == (16, cfg.channels, size, size) and torch.isfinite(samples).all(),
          f"preview shaped {tuple(samples.shape)}")
    path = trainer.save()
    gen = load_generator(str(path), device=ctx.device)
    sample = gen.sample([0, 1])
    check(tuple(sample.shape) == (2, cfg.channels, size, size) and torch.isfinite(sample).all(),
          f"the saved checkpoint samples {tuple(sample.shape)}")
    row.passed(f"checkpoint saved + loaded on {ctx.device.type}")
    return rate, events


# ----------------------------------------------------------------------------- rows


def training_row(size: int) -> Callable[[Context, Row], None]:
    def row_fn(ctx: Context, row: Row) -> None:
        if size not in ctx.args.sizes:
            return skip(row, f"--sizes {' '.join(map(str, ctx.args.sizes))}")
        policy = mixed_precision_for(ctx.device)
        row.precision = f"{precision_name(policy)} (policy)"
        # the baseline: the tutorial's loop on the same device, fp32, its own DataLoader
        tutorial = tutorial_runner(ctx.pngs(size), size, ctx.args.workers, device=str(ctx.device))
        try:
            base, _ = images_per_s(ctx, tutorial.steps, ctx.args.warmup, ctx.args.seconds, ctx.args.min_steps)
        finally:
            for close in tutorial.close:
                close()
        tutorial_peak = torch.cuda.max_memory_allocated(ctx.device) / 2**20 if ctx.cuda else None
        if ctx.cuda:
            torch.cuda.reset_peak_memory_stats(ctx.device)
        trainer = new_trainer(ctx, size, f"run{size}")
        rate, _ = train_and_check(ctx, row, trainer, policy)
        ctx.rates[f"policy {size}"] = rate
        row.result = f"{rate:,.0f} img/s"
        row.baseline = f"tutorial loop {base:,.0f} img/s (fp32, {ctx.args.workers} workers)"
        row.ratio = f"{rate / base:.2f}x" if not ctx.args.quick else "n/a (--quick: tiny nets)"
        row.numbers.update(images_per_s=rate, tutorial_images_per_s=base, tutorial_peak_mib=tutorial_peak)
    return row_fn


def scaled_gradients(trainer: Trainer, row: Row) -> None:
    """One more step with R1 due, watching a weight of D: what reaches it in backward (D's loss and R1's
    penalty) must be the loss scale times what the optimiser gets after unscaling."""
    while trainer.step % 4:  # lazy R1 runs on steps 0, 4, 8, ...
        trainer.train_step()
    weight = next(p for p in trainer.D.parameters() if p.dim() == 4)
    raw: list[torch.Tensor] = []
    hook = weight.register_hook(lambda g: raw.append(g.detach().float().clone()))
    scale = trainer.scaler.get_scale()
    trainer.train_step()
    hook.remove()
    if not torch.isfinite(weight.grad).all():  # this step overflowed: it must have been skipped, the scale halved
        check(trainer.scaler.get_scale() == scale / 2, "an overflowing step did not halve the loss scale")
        row.passed("an overflow halved the scale")
        return
    ratio = float(torch.stack(raw).sum(0).norm() / weight.grad.norm())
    check(len(raw) == 2 and math.isclose(ratio, scale, rel_tol=1e-2),
          f"D's gradient was scaled by {ratio:g} in {len(raw)} backward pass(es), the scale is {scale:g}")
    row.passed(f"D's gradients (loss + R1) scaled x{scale:g}, unscaled for Adam")


def forced_row(dtype: torch.dtype | None, scaler: bool) -> Callable[[Context, Row], None]:
    def row_fn(ctx: Context, row: Row) -> None:
        size = ctx.args.forced_size
        precision = Precision(dtype, scaler)
        row.precision = f"{precision_name(precision)} (forced)"
        overrides: dict[str, Any] = {"r1_gamma": 1.0, "d_skip_threshold": 0.0} if scaler else {"amp": False}
        trainer = new_trainer(ctx, size, f"forced-{precision_name(dtype)}", precision if dtype else None, **overrides)
        rate, _ = train_and_check(ctx, row, trainer, precision)
        if scaler:
            scaled_gradients(trainer, row)
            row.passed("R1 every 4th step")
        row.result = f"{rate:,.0f} img/s"
        base = ctx.rates.get(f"policy {size}")
        if base:
            row.baseline = f"policy precision {base:,.0f} img/s"
            row.ratio = f"{rate / base:.2f}x"
        row.numbers.update(images_per_s=rate)
    return row_fn


def against_dcgan(ctx: Context, row: Row, rate: float, size: int) -> None:
    """An architecture row's result, with the DCGAN row of the same size (when timed) as its baseline."""
    row.result = f"{rate:,.0f} img/s"
    base = ctx.rates.get(f"policy {size}")
    if base:
        row.baseline, row.ratio = f"DCGAN {base:,.0f} img/s", f"{rate / base:.2f}x"
    row.numbers.update(images_per_s=rate, size=size)


def msg_row(ctx: Context, row: Row) -> None:
    rules = TrainConfig.rules()
    if "arch" not in rules or "msg" not in rules["arch"][1].choices:
        return skip(row, "TrainConfig has no arch='msg' in this checkout (issue 10 §3 not merged)", "not built")
    size = ctx.args.msg_size
    policy = mixed_precision_for(ctx.device)
    row.precision = f"{precision_name(policy)} (policy)"
    trainer = new_trainer(ctx, size, "msg", arch="msg")
    rate, _ = train_and_check(ctx, row, trainer, policy)
    gen = load_generator(str(ctx.work / "msg"), device=ctx.device)
    if hasattr(gen, "sample_scales"):
        scales = gen.sample_scales([0, 1])
        sizes = [int(s.shape[-1]) for s in scales]
        check(sizes == [4 * 2**i for i in range(len(sizes))] and sizes[-1] == size
              and all(torch.isfinite(s).all() for s in scales), f"the scales came out {sizes}")
        row.passed(f"{len(sizes)} scales {sizes[0]}..{sizes[-1]} px")
    against_dcgan(ctx, row, rate, size)


def progressive_row(ctx: Context, row: Row) -> None:
    """Progressive growing at the MSG-GAN row's size, one step per smaller resolution: the timed steps train
    every stage and the fade-ins (layers unused at a stage, nearest upsampling, real images blended)."""
    if "progressive" not in TrainConfig.rules()["arch"][1].choices:
        return skip(row, "TrainConfig has no arch='progressive' in this checkout", "not built")
    size = ctx.args.msg_size
    policy = mixed_precision_for(ctx.device)
    row.precision = f"{precision_name(policy)} (policy)"
    trainer = new_trainer(ctx, size, "progressive", arch="progressive", grow_steps=1)
    rate, _ = train_and_check(ctx, row, trainer, policy)
    check(trainer.grown_size == size, f"it grew only to {trainer.grown_size} px")
    row.passed(f"grew {trainer.growth.sizes[0]}..{size} px")
    against_dcgan(ctx, row, rate, size)


def style_pictures(size: int) -> tuple[Image.Image, Image.Image]:
    """A content picture (shapes on a gradient, 4:3) and a style picture (stripes and noise)."""
    w, h = size, size * 3 // 4
    ramp = np.linspace(0, 255, w, dtype=np.float32)
    content = Image.fromarray(np.stack([np.tile(ramp, (h, 1)), np.tile(ramp[::-1], (h, 1)),
                                        np.full((h, w), 120, np.float32)], -1).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(content)
    draw.ellipse([w // 5, h // 5, w // 2, h * 3 // 4], fill=(230, 200, 40))
    draw.rectangle([w * 3 // 5, h // 3, w * 9 // 10, h * 9 // 10], fill=(30, 60, 200))
    rng = np.random.default_rng(0)
    stripes = (np.sin(np.arange(size)[:, None] / 3 + np.arange(size)[None, :] / 7) * 100 + 128)[..., None]
    style = np.clip(stripes * np.array([1.0, 0.6, 0.3]) + rng.normal(0, 25, (size, size, 3)), 0, 255)
    return content, Image.fromarray(style.astype(np.uint8), "RGB")


def style_row(precision: str) -> Callable[[Context, Row], None]:
    def row_fn(ctx: Context, row: Row) -> None:
        size, steps = ctx.args.style_size, ctx.args.style_steps
        dtype = choose_precision(ctx.device, precision)
        auto = choose_precision(ctx.device, "auto")
        row.precision = precision_name(dtype) + (" (auto picks it)" if dtype == auto else "")
        weights = ctx.work / "vgg19_random.safetensors"
        if not weights.exists():
            from safetensors.torch import save_file
            save_file(random_vgg19_state_dict(seed=0, with_classifier=True), str(weights))
        vgg = load_vgg19(weights, device=ctx.device)
        content, style = style_pictures(size)
        seen, hook = conv_dtypes(vgg)
        settings = StyleSettings(size=size, steps=steps, preview_every=0, precision=precision,  # type: ignore[arg-type]
                                 vgg_weights=str(weights), max_size=size)
        events = []
        marks: dict[int, float] = {}
        for event in stylize(content, [style], settings, device=ctx.device, vgg=vgg):
            if event.step >= 1 and not event.done:
                ctx.sync()
                marks[event.step] = time.perf_counter()
            events.append(event)
        hook.remove()
        last, first = events[-1], next(e for e in events if e.step == 1)
        timed = sorted(marks)
        check(len(timed) >= 2, f"only {len(timed)} step(s) ran")
        per_step = (marks[timed[-1]] - marks[timed[0]]) / (timed[-1] - timed[0])
        want = dtype or torch.float32
        check(want in seen and torch.float32 in seen, f"VGG's convolutions ran in {sorted({str(d) for d in seen})}")
        row.passed(f"VGG convs in {precision_name(dtype)} (targets fp32)")
        check(last.done and last.image is not None and last.image.size == (size, size * 3 // 4),
              f"the result is {None if last.image is None else last.image.size}")
        row.passed(f"output {last.image.width}x{last.image.height}")
        check(math.isfinite(last.total_loss) and last.total_loss < first.total_loss,
              f"the loss went from {first.total_loss:.4g} to {last.total_loss:.4g}")
        row.passed(f"loss {first.total_loss:.3g} -> {last.total_loss:.3g} in {timed[-1]} steps")
        ctx.rates[f"style {precision}"] = per_step
        ctx.rates[f"style loss {precision}"] = last.total_loss
        row.result = f"{per_step:.3f} s/step ({size} px, L-BFGS)"
        base = ctx.rates.get("style float32")
        if precision != "float32" and base:
            row.baseline, row.ratio = f"fp32 {base:.3f} s/step", f"{base / per_step:.2f}x fp32's speed"
            row.numbers["final_loss_vs_fp32"] = last.total_loss / ctx.rates["style loss float32"]
            row.checks.append(f"final loss {row.numbers['final_loss_vs_fp32']:.2f}x fp32's")
        row.numbers.update(seconds_per_step=per_step, steps=timed[-1], first_loss=first.total_loss,
                           final_loss=last.total_loss)
    return row_fn


def gpu_memory_of(pid: int) -> float | None:
    """MiB of GPU memory process ``pid`` holds, by nvidia-smi (None where it can't say)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid) and parts[1].isdigit():
            return float(parts[1])
    return None


def generate_row(ctx: Context, row: Row) -> None:
    import app_harness  # tests/app_harness.py: the app in a subprocess, its log, a clean stop

    workdir = ctx.work / "app"
    workdir.mkdir()
    env = app_harness.app_env(workdir)
    env.update({"GANDEMO_DEVICE": str(ctx.device), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(ctx.args.app_threads)})
    free_before = torch.cuda.mem_get_info(ctx.device)[0] if ctx.cuda else 0
    port = app_harness.free_port()
    log_path = workdir / "app.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)], cwd=REPO,
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    app = app_harness.AppProcess(f"http://127.0.0.1:{port}", proc, log_path, workdir)
    try:
        t0 = time.monotonic()
        app_harness._wait_until_serving(app, 120.0)
        row.numbers["app_start_s"] = time.monotonic() - t0
        client = app.client(workdir / "downloads")
        num, times, grids = ctx.args.num, [], []
        for i in range(ctx.args.warmup_calls + ctx.args.calls):
            t = time.perf_counter()
            answer = client.predict(model="fashion-mnist", seed=1000 * i, num=num, truncation=0, api_name="/generate")
            if i >= ctx.args.warmup_calls:
                times.append((time.perf_counter() - t) * 1000)
            if i in (0, ctx.args.warmup_calls + ctx.args.calls - 1):
                grids.append(answer[0] if isinstance(answer, (tuple, list)) else answer)  # the grid's file first
        app.assert_alive()
        check(app.unexpected_errors() == [], f"the app logged {app.unexpected_errors()[:1]}")
        pixels = []
        for shown in grids:
            with Image.open(shown) as grid:
                pixels.append(np.asarray(grid.convert("RGB"), dtype=np.float32))
        check(all(p.std() > 1 for p in pixels) and not np.array_equal(pixels[0], pixels[-1]),
              "the grids are blank or two seeds gave the same grid")
        row.passed(f"{num}-image grids ({pixels[0].shape[1]}x{pixels[0].shape[0]} shown), seeds differ")
        if ctx.cuda:
            held = gpu_memory_of(proc.pid)
            used = (free_before - torch.cuda.mem_get_info(ctx.device)[0]) / 2**20
            row.peak_mib = held if held is not None else used
            check((held or used) > 50, f"the app's process holds no GPU memory (nvidia-smi: {held}, device: {used:.0f} MiB)")
            row.passed(f"model on the GPU (app process holds {(held or used):,.0f} MiB, CUDA context included)")
    finally:
        code = app.stop()
    p50, p95 = (float(np.percentile(times, q)) for q in (50, 95))
    row.precision = "fp32 (sampling)"
    row.result = f"p50 {p50:.0f} ms, p95 {p95:.0f} ms ({len(times)} calls, {num} images)"
    row.numbers.update(p50_ms=p50, p95_ms=p95, calls=len(times), images=num, app_exit=code, times_ms=times)
    row.reason = "" if code in (0, -15) else f"app exit status {code}"
    check(code in (0, -15), f"the app exited with status {code} when stopped")


def distributed_trainer_exists() -> bool:
    return any("init_process_group" in p.read_text(encoding="utf-8", errors="replace")
               for p in (REPO / "gandemo").rglob("*.py"))


def torchrun_train(ctx: Context, n: int, steps: int, out: Path, check_file: Path | None = None) -> float:
    """``torchrun --standalone --nproc_per_node=n -m gandemo train`` on the 64 px PNGs; its wall seconds."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", "-m", "gandemo",
           "train", str(ctx.pngs(64) / "images"), "--out", str(out), "--size", "64", "--steps", str(steps),
           "--batch-size", str(BATCH), "--preview-every", "0", "--checkpoint-every", "0"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    if check_file is not None:
        env["GANDEMO_DDP_CHECK"] = str(check_file)
    t0 = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False)
    wall = time.monotonic() - t0
    last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or [""]
    check(done.returncode == 0, f"torchrun with {n} process(es) exited {done.returncode}: {last[0][:200]}")
    sample = load_generator(str(out), device=ctx.device).sample([0, 1])
    check(torch.isfinite(sample).all() and tuple(sample.shape) == (2, 3, 64, 64), f"{out.name}'s checkpoint samples badly")
    return wall


def ddp_row(ctx: Context, row: Row) -> None:
    if not ctx.cuda:
        return skip(row, "--device cpu (the CPU suite's Gloo test covers DDP)")
    gpus = torch.cuda.device_count()
    if gpus < 2:
        return skip(row, f"{gpus} GPU")
    if not distributed_trainer_exists():
        return skip(row, f"{gpus} GPUs, but this checkout's trainer has no torch.distributed (issue 10 §5 not merged)",
                    "not built")
    steps = ctx.args.ddp_steps
    row.precision = f"{precision_name(mixed_precision_for(ctx.device))} (policy)"
    # the ranks stay one model (GANDEMO_DDP_CHECK: every rank hashes its weights after every step; rank 0
    # stops the run if they differ) and each sees its own share of the images
    check_file = ctx.work / "ddp_check.jsonl"
    torchrun_train(ctx, gpus, 10, ctx.work / "ddp-check", check_file)
    lines = [json.loads(line) for line in check_file.read_text().splitlines()]
    check(len(lines) >= 10 and all(len(line["ranks"]) == gpus for line in lines), f"{len(lines)} check lines")
    first = [set(rank["batch"]) for rank in lines[0]["ranks"]]
    check(all(a.isdisjoint(b) for i, a in enumerate(first) for b in first[i + 1:]), "two ranks trained on the same images")
    row.passed(f"NCCL, {gpus} ranks identical after each of {len(lines)} steps, disjoint shards")
    walls = {n: torchrun_train(ctx, n, steps, ctx.work / f"ddp{n}") for n in (1, gpus)}
    rates = {n: steps * BATCH * n / walls[n] for n in walls}  # --batch-size is per process
    row.passed("checkpoints load")
    row.result = f"{rates[gpus]:,.0f} img/s on {gpus} GPUs ({steps} steps, start-up included)"
    row.baseline, row.ratio = f"{rates[1]:,.0f} img/s on 1 GPU", f"{rates[gpus] / rates[1]:.2f}x"
    row.numbers.update(wall_s=walls, images_per_s=rates)


# ----------------------------------------------------------------------------- main


def machine(device: torch.device) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda,
        "python": platform.python_version(), "cpu_cores": os.cpu_count(),
        "policy": precision_name(mixed_precision_for(device)),
    }
    if device.type == "cuda":
        facts.update(gpu=torch.cuda.get_device_name(device), gpus=torch.cuda.device_count(),
                     capability=".".join(map(str, torch.cuda.get_device_capability(device))),
                     gpu_memory_gib=round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1),
                     cudnn=torch.backends.cudnn.version())
    else:
        facts["cpu"] = platform.processor() or platform.machine()
    return facts


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join(["---"] * len(HEADERS)) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def plan(args: argparse.Namespace) -> list[tuple[str, Callable[[Context, Row], None]]]:
    rows: list[tuple[str, Callable[[Context, Row], None]]] = [
        (f"train {s} px: Trainer vs tutorial", training_row(s)) for s in SIZES]
    rows += [(f"train {args.forced_size} px, fp16 + GradScaler + R1 (pre-Ampere path)", forced_row(torch.float16, True)),
             (f"train {args.forced_size} px, fp32 (amp off)", forced_row(None, False)),
             (f"train {args.msg_size} px, MSG-GAN", msg_row),
             (f"train {args.msg_size} px, progressive growing", progressive_row)]
    rows += [(f"style transfer {args.style_size} px, {p}", style_row(p)) for p in STYLE_PRECISIONS]
    rows += [("/generate via gradio_client (app on the device)", generate_row),
             ("DDP, NCCL (torchrun)", ddp_row)]
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu; cpu runs every row it can, smaller with --quick")
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds per row): for CI and a first try")
    p.add_argument("--json", type=Path, help="also write the table and the numbers here (e.g. $OUT/gpu_check.json)")
    p.add_argument("--budget-s", type=float, help="rows that would start after this many seconds are skipped "
                   "(default 270, --quick 80)")
    p.add_argument("--sizes", type=int, nargs="+", choices=SIZES, help="training sizes to time (default all; --quick 32)")
    p.add_argument("--seconds", type=float, help="timed seconds per training method (default 6, --quick 0.5)")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = dict(budget_s=80.0 if quick else 270.0, sizes=[32] if quick else list(SIZES),
                    seconds=0.5 if quick else 6.0)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.warmup = 1 if quick else 10
    args.min_steps = 1 if quick else 20
    args.images = 64 if quick else 2048
    args.workers = 0 if quick else min(8, os.cpu_count() or 1)
    args.forced_size = 32 if quick else 64
    args.msg_size = 32 if quick else 128
    # --quick trains tiny networks (the tutorial's loop keeps its own: batch 32, width 64)
    args.batch = 8 if quick else BATCH
    args.width = 8 if quick else 64
    args.style_size = 64 if quick else 512
    args.style_steps = 3 if quick else 50
    args.num = 16 if quick else 64
    args.calls = 5 if quick else 20
    args.warmup_calls = 1 if quick else 3
    args.app_threads = 1 if quick else 4
    args.ddp_steps = 50
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: --device {args.device} but torch {torch.__version__} sees no CUDA GPU "
              f"(use --device cpu to exercise the CPU paths)", file=sys.stderr)
        return 2
    os.environ["HF_HUB_OFFLINE"] = "1"  # nothing here may reach the network
    started = time.monotonic()
    facts = machine(device)
    print(f"[gpu_check] {json.dumps(facts)}", flush=True)
    rows: list[Row] = []

    def report(done: bool) -> tuple[str, list[Row]]:
        wall = time.monotonic() - started
        failed = [r for r in rows if r.status == "FAIL"]
        where = (f"{facts['gpu']} (compute capability {facts['capability']}, {facts['gpu_memory_gib']} GiB)"
                 if device.type == "cuda" else f"CPU ({facts['cpu']}, {facts['cpu_cores']} cores)")
        header = (f"gandemo GPU check, {facts['date_utc']} UTC: {where}; torch {facts['torch']}"
                  f"{', CUDA ' + str(facts['cuda']) if device.type == 'cuda' else ''}; training precision by the "
                  f"policy: {facts['policy']}; {'--quick; ' if args.quick else ''}{wall:.0f} s in all; "
                  f"Trainer rows batch {args.batch}, width {args.width}, latent 100; {len(failed)} row(s) failed"
                  f"{'' if done else ' so far (interrupted?)'}.")
        markdown = f"{header}\n\n{table(rows)}"
        if args.json:  # after every row, so a run stopped at the device's time limit still leaves its rows
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"machine": facts, "quick": args.quick, "wall_s": wall, "complete": done,
                                             "ok": done and not failed, "header": header, "markdown": markdown,
                                             "rows": [dataclasses.asdict(r) for r in rows]}, indent=2, default=str))
        return markdown, failed

    with tempfile.TemporaryDirectory(prefix="gandemo-gpu-check-") as tmp:
        ctx = Context(args, device, Path(tmp), deadline=started + args.budget_s)
        for name, fn in plan(args):
            run_row(ctx, rows, name, fn)
            report(done=False)
    markdown, failed = report(done=True)
    print("\n" + markdown, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
