"""Shared pieces of the GAN training benchmarks (train_throughput.py, few_shot_quality.py).

* ``TutorialDCGAN``: one training step written the way the classic PyTorch DCGAN tutorial writes it
  (https://pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html): a Sigmoid-ended
  discriminator with batch norm, ``nn.BCELoss``, separate D forwards for the real and the fake
  batch, and a generator phase that leaves D's ``requires_grad`` on. The networks are layer for
  layer the tutorial's (``DCGANGenerator`` is the tutorial's generator; the discriminator is
  ``DCGANDiscriminator(spectral_norm=False).net`` + ``nn.Sigmoid()``), so its width and depth
  match ours at every size.
* ``PLAIN``: TrainConfig overrides that turn every fix of our Trainer off (a plain DCGAN).
* Machine facts, thread settings and a markdown table printer.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from _proc import cpu_model  # noqa: E402, F401 - re-exported for the benchmarks

from gandemo.device import native_bfloat16  # noqa: E402
from gandemo.gan.models import DCGANDiscriminator, DCGANGenerator  # noqa: E402

# Every fix of TrainConfig off: no DiffAugment, no mirroring, no label smoothing, no spectral norm
# (so D has batch norm, like the DCGAN paper's), no skip-D, no EMA, no R1; BCE loss.
PLAIN: dict[str, Any] = {
    "diffaugment": "", "mirror": False, "label_smoothing": 1.0, "spectral_norm": False,
    "d_skip_threshold": 0.0, "ema_decay": 0.0, "r1_gamma": 0.0, "loss": "bce",
}


# ----------------------------------------------------------------------------- machine


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for subprocesses (DataLoader workers set 1 themselves)


def machine_facts() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    bf16 = "yes" if native_bfloat16(torch.device("cpu")) else "no"
    return (f"CPU: {cpu_model()} ({os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()}, native bfloat16: "
            f"{bf16}); torch {torch.__version__}, {torch.get_num_threads()} thread(s); Python {platform.python_version()}; "
            f"load average {load}")


def other_busy_processes() -> list[str]:
    """Command lines of other processes using CPU right now (a quick check before trusting timings)."""
    try:
        out = subprocess.run(["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu"], capture_output=True, text=True,
                             timeout=10, check=False).stdout.splitlines()[1:]
    except (OSError, subprocess.SubprocessError):
        return []
    busy = []
    for line in out:
        pid, pcpu, args = line.split(None, 2)
        if int(pid) != os.getpid() and float(pcpu) >= 20:
            busy.append(f"{args[:80]} ({pcpu}% CPU)")
    return busy


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[bool] | None = None) -> str:
    right = right or [i > 0 for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the tutorial's loop


def weights_init(m: nn.Module) -> None:
    """The tutorial's initialisation, verbatim."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class TutorialDCGAN:
    """Networks, optimisers and one training iteration of the PyTorch DCGAN tutorial."""

    real_label = 1.0
    fake_label = 0.0

    def __init__(self, image_size: int, channels: int, latent_dim: int = 100, width: int = 64, lr: float = 2e-4,
                 beta1: float = 0.5, seed: int = 0, device: str = "cpu"):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.nz = latent_dim
        self.netG = DCGANGenerator(image_size, channels, latent_dim, width).to(self.device)
        self.netG.apply(weights_init)
        self.netD = nn.Sequential(DCGANDiscriminator(image_size, channels, width, spectral_norm=False).net,
                                  nn.Sigmoid()).to(self.device)
        self.netD.apply(weights_init)
        self.criterion = nn.BCELoss()
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=lr, betas=(beta1, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=lr, betas=(beta1, 0.999))
        self.G_losses: list[float] = []
        self.D_losses: list[float] = []

    def step(self, real_cpu: torch.Tensor) -> dict[str, float]:
        """One iteration of the tutorial's inner loop on a batch in [-1, 1]."""
        netD, netG, criterion = self.netD, self.netG, self.criterion
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        real_cpu = real_cpu.to(self.device)
        b_size = real_cpu.size(0)
        label = torch.full((b_size,), self.real_label, dtype=torch.float, device=self.device)
        output = netD(real_cpu).view(-1)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(b_size, self.nz, 1, 1, device=self.device)
        fake = netG(noise)
        label.fill_(self.fake_label)
        output = netD(fake.detach()).view(-1)
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        self.optimizerD.step()
        # (2) Update G network: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(self.real_label)
        output = netD(fake).view(-1)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        self.optimizerG.step()
        self.G_losses.append(errG.item())
        self.D_losses.append(errD.item())
        return {"loss_d": errD.item(), "loss_g": errG.item(), "d_real": D_x, "d_fake": D_G_z1, "d_fake_after": D_G_z2}


# ----------------------------------------------------------------------------- wall-clock timing per phase


class PhaseTimer:
    """Wall-clock seconds per named phase while ``recording`` (CPU ops are synchronous, so this is exact there).

    ``install_backward_timer`` times ``Tensor.backward`` for whichever timer is ``PhaseTimer.current``.
    """

    current: PhaseTimer | None = None

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.recording = False
        self._undo: list[Callable[[], None]] = []

    def add(self, name: str, dt: float) -> None:
        if self.recording:
            self.seconds[name] = self.seconds.get(name, 0.0) + dt

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t0)
        return timed

    def patch(self, obj: Any, attr: str, name: str) -> None:
        """Time every call of ``obj.attr`` (an instance attribute shadows the method until ``restore``)."""
        had_own = attr in vars(obj)
        original = getattr(obj, attr)
        setattr(obj, attr, self.wrap(name, original))
        self._undo.append(lambda: setattr(obj, attr, original) if had_own else delattr(obj, attr))

    def patch_module(self, module: nn.Module, name: str) -> None:
        starts: list[float] = []
        pre = module.register_forward_pre_hook(lambda *_: starts.append(time.perf_counter()))
        post = module.register_forward_hook(lambda *_: self.add(name, time.perf_counter() - starts.pop()))
        self._undo += [pre.remove, post.remove]

    def patch_optimizer(self, opt: torch.optim.Optimizer, name: str = "optimiser steps") -> None:
        starts: list[float] = []
        pre = opt.register_step_pre_hook(lambda *_: starts.append(time.perf_counter()))
        post = opt.register_step_post_hook(lambda *_: self.add(name, time.perf_counter() - starts.pop()))
        self._undo += [pre.remove, post.remove]

    def restore(self) -> None:
        while self._undo:
            self._undo.pop()()


def install_backward_timer(name: str = "backward") -> Callable[[], None]:
    """Time ``Tensor.backward`` into ``PhaseTimer.current``; returns the function that undoes it."""
    original = torch.Tensor.backward

    def backward(self: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        t0 = time.perf_counter()
        try:
            original(self, *args, **kwargs)
        finally:
            if PhaseTimer.current is not None:
                PhaseTimer.current.add(name, time.perf_counter() - t0)

    torch.Tensor.backward = backward  # type: ignore[method-assign]
    return lambda: setattr(torch.Tensor, "backward", original)
