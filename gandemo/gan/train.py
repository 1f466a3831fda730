"""Train a DCGAN on a small image set: the lesson's two phases, plus the known fixes.

Each step:
  1. Discriminator phase: D sees a real batch (target "real") and a generated batch (target
     "fake") and takes one optimiser step. It is skipped while D's loss is below the skip
     threshold, so a discriminator that already wins doesn't run away from the generator.
  2. Generator phase: G makes a batch, D (not updated in this phase) scores it, and G takes a
     step towards D saying "real".

Fixes, each a switch in TrainConfig: DiffAugment on everything D sees, one-sided label
smoothing, BCE-with-logits or hinge loss, spectral norm in D, minibatch diversity in D, PacGAN's packing (D judges
a few images at once), the skip-D threshold, an EMA of G's weights for previews and export, and an optional R1
gradient penalty on real images.

``Trainer.train()`` is an iterator of TrainEvent; the CLI prints them, the UI streams them.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from ..device import Precision, mixed_precision_for, pick_device
from ..errors import InvalidInputError
from ..images import make_grid, upscale
from . import distributed
from .augment import diff_augment
from .checkpoint import model_card
from .health import HealthMessage, HealthMonitor, learning_rates_changed, sample_diversity
from .latent import latents_for_seeds
from .models import DCGANDiscriminator, DCGANGenerator
from .msg import (
    ARCH_NAMES,
    MSGDiscriminator,
    MSGGenerator,
    as_list,
    augment_scales,
    cat_images,
    detach_images,
    image_pyramid,
)
from .progressive import GrowthSchedule, ProgressiveDiscriminator, ProgressiveGenerator, blend_real
from .runs import TRAINING_DIR, RunFolder, checkpoint_bytes
from .settings import Rule, TrainConfig, parse_lr_drop, parse_policy, settings_table

__all__ = ["TRAINING_DIR", "Rule", "TrainConfig", "TrainEvent", "Trainer", "parse_lr_drop", "settings_table"]
SNAPSHOT_EVERY = 100  # steps between in-memory known-good copies (NaN/inf recovery)
AUTO_LR_FACTOR = 0.1  # auto_lr_drop: both learning rates x0.1, like the Train tab's "lower now" button


@dataclass
class TrainEvent:
    kind: str  # "start" | "step" | "preview" | "health" | "lr" | "checkpoint" | "done" | "stopped"
    step: int
    total_steps: int
    losses: dict[str, float] = field(default_factory=dict)  # loss_d, loss_g, d_real, d_fake, lr_g, lr_d
    images_per_s: float = 0.0
    eta_s: float = 0.0
    preview: Image.Image | None = None
    diversity: float | None = None
    health: list[HealthMessage] = field(default_factory=list)
    checkpoint: Path | None = None
    message: str = ""
    growing: int = 0  # progressive growing: the resolution the step trained at while below the output size (px)


class Trainer:
    """Holds the networks, optimisers and data for one training run."""

    def __init__(self, data: torch.Tensor, config: TrainConfig, out_dir: str | Path,
                 device: str | torch.device | None = None, data_summary: str = "",
                 precision: tuple[torch.dtype | None, bool] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        """``precision`` (autocast dtype or None for float32, loss scaler on/off) overrides the device's
        mixed-precision policy; tests use it to run the float16 loss-scaler branch on the CPU.
        ``clock`` (seconds) times the checkpoints every ``checkpoint_minutes``; tests pass a fake one."""
        if data.dtype != torch.uint8 or data.dim() != 4:
            raise InvalidInputError("Training data must be a uint8 tensor shaped (N, C, H, W).")
        self.config = config.validate()
        n, c, h, w = data.shape
        if c != config.channels or h != config.image_size or w != config.image_size:
            raise InvalidInputError(
                f"The images are {c}x{h}x{w} but the settings ask for {config.channels}x{config.image_size}x{config.image_size}."
            )
        self.dist = distributed.current()  # torchrun's ranks (gandemo.gan.distributed), or this process alone
        self.device = torch.device(device) if device else (self.dist.device or pick_device())
        self.out_dir = Path(out_dir)
        self.data_summary = data_summary
        self.clock = clock
        torch.manual_seed(config.seed)
        # Preprocessed once: uint8 on the device when it fits comfortably, else pinned on the CPU.
        fits = self.device.type != "cuda" or data.numel() < 0.25 * torch.cuda.mem_get_info(self.device)[0]
        self.data = data.to(self.device) if fits else data.pin_memory()
        # Mixed precision where the hardware has it (device.mixed_precision): CUDA (bf16 where native,
        # Ampere+; else fp16 with a loss scaler), and bf16 on CPUs with native bf16 convolutions
        # (AVX512-BF16/AMX), about 1.7x faster there. Losses, the optimisers' state and the weights stay float32.
        on_cuda = self.device.type == "cuda"
        if precision is None:
            precision = mixed_precision_for(self.device) if config.amp else Precision(None, False)
        amp_dtype, use_scaler = precision
        self.amp = amp_dtype is not None
        self.amp_dtype = amp_dtype or torch.float32
        self.channels_last = on_cuda  # on CPUs NCHW measured faster, in float32 and in bfloat16
        self.msg = config.arch == "msg"  # MSG-GAN: G's images at every scale go to D (gandemo.gan.msg)
        # progressive growing (gandemo.gan.progressive): the resolution of each step; 0 grow steps: half the run
        self.growth: GrowthSchedule | None = None
        if config.arch == "progressive":
            if not config.grow_steps:  # resolved once and kept in the run's settings, so a resume grows alike
                self.config = config = replace(config, grow_steps=GrowthSchedule.automatic(config.image_size, config.steps))
            self.growth = GrowthSchedule(config.image_size, config.grow_steps)
            if config.steps < self.growth.grown_step:
                raise InvalidInputError(
                    f"Progressive growing at {config.image_size} px with {config.grow_steps} steps per resolution "
                    f"reaches the full size after {self.growth.grown_step} steps, but the "
                    f"run has {config.steps}; train longer or use fewer grow steps (0: automatic).")
        G, D = {"msg": (MSGGenerator, MSGDiscriminator), "progressive": (ProgressiveGenerator, ProgressiveDiscriminator)
                }.get(config.arch, (DCGANGenerator, DCGANDiscriminator))
        self.G = G(config.image_size, config.channels, config.latent_dim, config.width_g).to(self.device)
        self.D = D(config.image_size, config.channels, config.width_d, config.spectral_norm,
                   config.minibatch_std, config.pack).to(self.device)
        if self.channels_last:
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        # the passes whose gradients are averaged over torchrun's ranks go through these (G, D when alone)
        growing = self.growth is not None  # a growing network leaves the layers of other resolutions unused
        self.G_train, self.D_train = self.dist.wrap(self.G, growing), self.dist.wrap(self.D, growing)
        self.dist.decorrelate_rng(config.seed)
        betas = (config.beta1, config.beta2)
        fused = self.device.type in ("cuda", "cpu")  # one kernel for all parameters instead of a loop
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr_g, betas=betas, fused=fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr_d, betas=betas, fused=fused)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.policy = parse_policy(config.diffaugment)
        self.step = 0
        self.skipped_d = 0
        self.recoveries = 0
        self.history: list[dict[str, float]] = []
        self.fixed_z = latents_for_seeds(list(range(16)), config.latent_dim).to(self.device)
        self._rng = torch.Generator(device="cpu").manual_seed(config.seed)
        self._order = torch.empty(0, dtype=torch.long)
        self._good: dict | None = None
        self._last_d_loss = math.inf
        self.lr_changes: list[dict[str, Any]] = []  # every change of the learning rates, kept in state.json
        self._lr_requests: list[dict[str, Any]] = []  # asked for from other threads, applied between steps
        self._lr_lock = threading.Lock()
        self.monitor: HealthMonitor | None = None

    # ----------------------------------------------------------------- data
    def real_batch(self) -> torch.Tensor:
        n, bs = self.data.shape[0], self.config.batch_size
        # Every rank walks the same order and takes its own slice of each step's share of it:
        # torchrun's ranks see disjoint parts of every epoch (one process: the whole batch).
        step_bs = bs * self.dist.world_size
        if self._order.numel() < step_bs:  # a new epoch: every image once, in a fresh order
            self._order = torch.cat([self._order, torch.randperm(n, generator=self._rng)])
            while self._order.numel() < step_bs:
                self._order = torch.cat([self._order, torch.randperm(n, generator=self._rng)])
        idx, self._order = self._order[:step_bs], self._order[step_bs:]
        idx = self.last_batch = idx[self.dist.rank * bs:(self.dist.rank + 1) * bs]
        x = self.data[idx.to(self.data.device)].to(self.device, non_blocking=True).float().div_(127.5).sub_(1.0)
        if self.config.mirror:
            flip = torch.rand(bs, device=self.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def augment(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        """DiffAugment; an MSG batch (one tensor per scale) gets the same change at every scale."""
        if not self.policy:
            return x
        return augment_scales(x, self.policy) if isinstance(x, list) else diff_augment(x, self.policy)

    # ----------------------------------------------------------------- losses
    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to optimise, loss without label smoothing for the skip-D rule and the plots)."""
        if self.config.loss == "hinge":
            loss = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
            return loss, loss.detach()
        target = torch.full_like(real_logits, self.config.label_smoothing)
        loss = F.binary_cross_entropy_with_logits(real_logits, target) + F.softplus(fake_logits).mean()
        plain = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        return loss, plain.detach()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "hinge":
            return -fake_logits.mean()
        return F.softplus(-fake_logits).mean()  # non-saturating: -log D(G(z))

    # ----------------------------------------------------------------- one step
    def train_step(self) -> dict[str, float]:
        cfg, bs = self.config, self.config.batch_size
        real = self.real_batch()
        if self.msg:  # D sees real images at every scale too
            real = image_pyramid(real)
        grow = self._growth_args()
        if grow:
            real = blend_real(real, self.growth.sizes[grow["stage"]], grow["alpha"])
        z = torch.randn(bs, cfg.latent_dim, device=self.device)
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp)

        # Phase 1: discriminator (skipped while it already wins by a wide margin)
        with autocast:
            fake = self.G_train(z, all_scales=True) if self.msg else self.G_train(z, **grow)
            # no batch norm in D: one forward over real and fake together (with the minibatch spread: two,
            # so that a group never holds both)
            if cfg.spectral_norm and not cfg.minibatch_std:
                logits = self.D_train(self.augment(cat_images(real, detach_images(fake))), **grow)
                real_logits, fake_logits = logits[:bs // cfg.pack], logits[bs // cfg.pack:]  # PacGAN: a logit per pack
            else:
                real_logits = self.D_train(self.augment(real), **grow)
                fake_logits = self.D_train(self.augment(detach_images(fake)), **grow)
            loss_d, plain_d = self.d_loss(real_logits.float(), fake_logits.float())
        update_d = not (cfg.d_skip_threshold > 0 and self._last_d_loss < cfg.d_skip_threshold)
        if update_d:
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler.scale(loss_d).backward()
            if cfg.r1_gamma > 0 and self.step % 4 == 0:  # lazy R1, every 4th step, scaled by 4
                # scaled like D's loss: scaler.step unscales every gradient, R1's included
                self.scaler.scale(self.r1_penalty(real)).backward()
            self.scaler.step(self.opt_d)
        else:
            self.skipped_d += 1

        # Phase 2: generator, through a D that is not updated here (the plain D: no gradients of D to average)
        self.D.requires_grad_(False)
        with autocast:
            loss_g = self.g_loss(self.D(self.augment(fake), **grow).float())
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_g)
        self.scaler.update()
        self.D.requires_grad_(True)
        self.step += 1
        self.dist.sync_buffers(self.G, self.D)  # torchrun: BatchNorm statistics averaged, other buffers rank 0's
        self.update_ema()
        # averaged over torchrun's ranks, so that every rank's skip-D rule, NaN check and health monitor agree
        loss_d, loss_g, d_real, d_fake = self.dist.mean([
            plain_d, loss_g.detach(), torch.sigmoid(real_logits.detach().float()).mean(),
            torch.sigmoid(fake_logits.detach().float()).mean()])
        self._last_d_loss = loss_d
        return {
            "loss_d": loss_d, "loss_g": loss_g, "d_real": d_real, "d_fake": d_fake,
            "d_updated": float(update_d), "lr_g": self.opt_g.param_groups[0]["lr"],
            "lr_d": self.opt_d.param_groups[0]["lr"],
        }

    def r1_penalty(self, real: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """Lazy R1 on real images; for MSG-GAN over every scale's real input (the squared gradients summed)."""
        xs = [x.detach().requires_grad_(True) for x in as_list(real)]
        grads = torch.autograd.grad(self.D_train(self.augment(xs if self.msg else xs[0]), **self._growth_args()).sum(),
                                    xs, create_graph=True)
        return self.config.r1_gamma / 2 * sum(g.pow(2).flatten(1).sum(1) for g in grads).mean() * 4

    def update_ema(self) -> None:
        ema_update(self.G_ema, self.G, self.config.ema_decay, self.step)

    def _growth_args(self, step: int | None = None) -> dict[str, Any]:
        """Progressive growing: the stage (resolution) and alpha (fade-in) of step ``step`` (default: the step
        about to be trained), as G's and D's keyword arguments; {} for the other architectures."""
        if self.growth is None:
            return {}
        stage, alpha = self.growth.at(self.step if step is None else step)
        return {"stage": stage, "alpha": alpha}

    @property
    def grown_size(self) -> int:
        """The resolution the last step trained at (the output size unless growing progressively)."""
        if self.growth is None:
            return self.config.image_size
        return self.growth.sizes[self._growth_args(max(self.step - 1, 0))["stage"]]

    @torch.no_grad()
    def preview(self, scale_to: int = 384) -> tuple[Image.Image, torch.Tensor]:
        if self.growth is None:
            samples = self.G_ema(self.fixed_z).float().cpu()
        else:  # while growing: what G draws at the resolution of the moment, enlarged to the output size
            drawn = self.G_ema.grown(self.fixed_z, **self._growth_args(max(self.step - 1, 0)))
            samples = F.interpolate(drawn.float(), size=self.config.image_size, mode="nearest").cpu()
        grid = make_grid(samples, columns=4)
        return upscale(grid, max(1, scale_to // grid.width)), samples

    # ----------------------------------------------------------------- learning rates while it trains
    @property
    def learning_rates(self) -> tuple[float, float]:
        """(G's, D's) learning rates now."""
        return float(self.opt_g.param_groups[0]["lr"]), float(self.opt_d.param_groups[0]["lr"])

    def set_learning_rates(self, lr_g: float | None = None, lr_d: float | None = None,
                           reason: str = "manual") -> tuple[float, float]:
        """Ask for new learning rates (None: unchanged). Safe from any thread: the training loop applies
        them before its next step, marks the change and keeps it in the run's state.
        Returns the rates the next step will use; a rate outside TrainConfig's range raises InvalidInputError."""
        rules = TrainConfig.rules()
        problems = [rules[name][1].problem_with(name, float, value)
                    for name, value in (("lr_g", lr_g), ("lr_d", lr_d)) if value is not None]
        if any(problems):
            raise InvalidInputError("Invalid training settings: " + "; ".join(p for p in problems if p) + ".")
        return self._request({"lr_g": lr_g, "lr_d": lr_d, "reason": reason})

    def lower_learning_rates(self, factor: float = 0.1, reason: str = "manual") -> tuple[float, float]:
        """Ask for both learning rates times ``factor`` (0 < factor < 1) from the next step on; thread-safe."""
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < 1:
            raise InvalidInputError(f"The factor that lowers the learning rates must be between 0 and 1 (got {factor!r}).")
        return self._request({"factor": float(factor), "reason": reason})

    def _request(self, request: dict[str, Any]) -> tuple[float, float]:
        with self._lr_lock:
            self._lr_requests.append(request)
            rates = self.learning_rates
            for r in self._lr_requests:
                rates = _next_rates(rates, r)
            return rates

    def _lr_changes_due(self) -> list[dict[str, Any]]:
        """Requests from other threads, then drops of the schedule due now (each applied once, also on resume)."""
        with self._lr_lock:
            due, self._lr_requests = self._lr_requests, []
        due = self.dist.main_json(due)  # torchrun: rank 0's requests (its automatic drops are every rank's too)
        done = {(c["step"], c.get("factor")) for c in self.lr_changes if c["reason"] == "schedule"}
        for step, factor in self.config.lr_drops:
            if step == self.step and (step, factor) not in done:
                due.append({"factor": factor, "reason": "schedule"})
        return due

    def _apply_lr_change(self, request: dict[str, Any]) -> HealthMessage:
        old = self.learning_rates
        new = _next_rates(old, request)
        for opt, lr in ((self.opt_g, new[0]), (self.opt_d, new[1])):
            for group in opt.param_groups:
                group["lr"] = lr
        self.lr_changes.append({"step": self.step, "reason": request["reason"], "factor": request.get("factor"),
                                "lr_g": [old[0], new[0]], "lr_d": [old[1], new[1]]})
        if self.monitor is not None:
            self.monitor.restart_oscillation()
        return learning_rates_changed(request["reason"], self.step + 1, old, new, request.get("factor"))

    # ----------------------------------------------------------------- safety net
    def snapshot(self) -> None:
        """Keep the last known-good state in memory (for NaN/inf recovery)."""
        self._good = {
            "G": copy.deepcopy(self.G.state_dict()), "D": copy.deepcopy(self.D.state_dict()),
            "G_ema": copy.deepcopy(self.G_ema.state_dict()),
            "opt_g": copy.deepcopy(self.opt_g.state_dict()), "opt_d": copy.deepcopy(self.opt_d.state_dict()),
        }

    def recover(self) -> HealthMessage:
        rates = self.learning_rates  # the rates now (a change since the snapshot counts), halved below
        if self._good is not None:
            self.G.load_state_dict(self._good["G"])
            self.D.load_state_dict(self._good["D"])
            self.G_ema.load_state_dict(self._good["G_ema"])
            self.opt_g.load_state_dict(self._good["opt_g"])
            self.opt_d.load_state_dict(self._good["opt_d"])
        for opt, lr in ((self.opt_g, rates[0]), (self.opt_d, rates[1])):
            for group in opt.param_groups:
                group["lr"] = lr * 0.5
        self.recoveries += 1
        self._last_d_loss = math.inf
        return HealthMonitor.non_finite(self.step, self.opt_g.param_groups[0]["lr"], self.opt_d.param_groups[0]["lr"])

    # ----------------------------------------------------------------- the loop
    def train(self, cancel: threading.Event | None = None) -> Iterator[TrainEvent]:
        cfg = self.config
        total = cfg.steps
        sample_idx = torch.randperm(self.data.shape[0], generator=torch.Generator().manual_seed(cfg.seed))[:64]
        real_div = sample_diversity(self.data[sample_idx.to(self.data.device)].float().div(127.5).sub(1))
        monitor = self.monitor = HealthMonitor(real_diversity=real_div)
        precision = f", {str(self.amp_dtype).removeprefix('torch.')} mixed precision" if self.amp else ", float32"
        precision += " with loss scaling" if self.scaler.is_enabled() else ""
        if self.dist.is_main:  # rank 0 writes the run (torchrun's other ranks hold the same weights)
            RunFolder(self.out_dir).check_writable(checkpoint_bytes(self.G, self.D))  # fail now, not at the first save
        where = f"{self.dist.world_size} processes ({self.dist.backend})" if self.dist.active else str(self.device)
        yield TrainEvent("start", self.step, total, message=f"Training on {where}{precision} from step {self.step}.")
        step_images = cfg.batch_size * self.dist.world_size  # images per step, over all of torchrun's ranks
        window: deque[tuple[float, int]] = deque(maxlen=20)
        self.snapshot()
        last_save = self.clock()
        rate = eta = 0.0
        while self.step < total:
            # between steps: learning-rate changes asked for (the Train tab, the API) or due (the schedule)
            for request in self._lr_changes_due():
                note = self._apply_lr_change(request)
                yield TrainEvent("lr", self.step, total, images_per_s=rate, eta_s=eta, health=[note], message=note.text)
            if self.dist.any(cancel is not None and cancel.is_set()):  # a stop on any rank stops them all here
                path = self.save()
                self.dist.verify(self, final=True)
                stopped = TrainEvent("stopped", self.step, total, checkpoint=path,
                                     message=f"Stopped at step {self.step}; checkpoint saved.")
                if self.dist.is_main:  # what G draws now, even when Stop came before the first preview
                    stopped.preview, _ = self.preview()
                yield stopped
                return
            t0 = time.perf_counter()
            stats = self.train_step()
            # A NaN/inf anywhere in G or D shows up in this step's or the next step's losses; the
            # (slower) check of every weight runs only before a snapshot, so a snapshot is always good.
            if not all(math.isfinite(v) for v in stats.values()) or (
                    self.step % SNAPSHOT_EVERY == 0 and not self.params_finite()):
                yield TrainEvent("health", self.step, total, health=[self.recover()])
                continue
            if self.step % SNAPSHOT_EVERY == 0:
                self.snapshot()
            window.append((time.perf_counter() - t0, step_images))
            rate = sum(b for _, b in window) / max(sum(t for t, _ in window), 1e-9)
            eta = (total - self.step) * step_images / max(rate, 1e-9)
            self.history.append({"step": self.step, **stats})
            health = monitor.observe_step(self.step, stats["d_real"], stats["d_fake"], stats["loss_g"])
            if cfg.auto_lr_drop and any(h.code == "oscillating" for h in health):
                self.lower_learning_rates(AUTO_LR_FACTOR, reason="auto")
            size = self.grown_size
            event = TrainEvent("step", self.step, total, losses=stats, images_per_s=rate, eta_s=eta, health=health,
                               growing=size if size < cfg.image_size else 0)
            if self.dist.is_main and ((cfg.preview_every and self.step % cfg.preview_every == 0) or self.step == total):
                event.kind = "preview"
                event.preview, samples = self.preview()
                event.diversity, collapse = monitor.observe_samples(self.step, samples)
                event.health += collapse
            yield event
            # A checkpoint every checkpoint_every steps, and at least every checkpoint_minutes: saving reads
            # the networks and the random state but changes neither, so a resumed run stays exact.
            by_steps = cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0
            by_time = self.dist.main_decides(  # rank 0's clock decides for every rank
                cfg.checkpoint_minutes > 0 and self.clock() - last_save >= 60 * cfg.checkpoint_minutes)
            if (by_steps or by_time) and self.step < total:
                path = self.save()
                last_save = self.clock()
                yield TrainEvent("checkpoint", self.step, total, checkpoint=path,
                                 message=f"Checkpoint saved at step {self.step}.")
            self.dist.verify(self)  # GANDEMO_DDP_CHECK: the ranks' weights are still one
        path = self.save()
        self.dist.verify(self, final=True)
        yield TrainEvent("done", self.step, total, checkpoint=path, message=f"Finished {total} steps.")

    def params_finite(self) -> bool:
        params = [*self.G.parameters(), *self.D.parameters()]
        return bool(torch.stack([torch.isfinite(p).all() for p in params]).all())

    # ----------------------------------------------------------------- checkpoints
    def save(self, out_dir: str | Path | None = None) -> Path:
        """Write the run atomically: EMA generator in the native format + everything to resume.

        A failed write (full disk, read-only folder) raises CheckpointWriteError and leaves the previous
        checkpoint intact. Under torchrun only rank 0 writes; the others return the folder's path."""
        if not self.dist.is_main:
            return Path(out_dir or self.out_dir)
        preview, _ = self.preview(scale_to=256)
        optimizers = {"opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                      "rng": self._rng.get_state(), "order": self._order.cpu(), "torch_rng": torch.get_rng_state(),
                      "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                      "last_d_loss": self._last_d_loss, "scaler": self.scaler.state_dict()}
        state = {"step": self.step, "config": asdict(self.config), "skipped_d": self.skipped_d,
                 "recoveries": self.recoveries, "data": self.data_summary, "history": self.history[-5000:],
                 "lr_changes": self.lr_changes, "processes": self.dist.world_size}
        try:
            return RunFolder(out_dir or self.out_dir).save(
                self.G_ema.cpu(), step=self.step, card=self.card(), sample_grid=preview, live=_cpu(self.G.state_dict()),
                discriminator=_cpu(self.D.state_dict()), optimizers=optimizers, state=state)
        finally:
            self.G_ema.to(self.device)

    def card(self) -> str:
        cfg = self.config
        settings = json.dumps(asdict(cfg), indent=2)
        growing = ""
        if self.growth is not None and self.step < self.growth.grown_step:
            growing = (f" Still growing: its last step trained at {self.grown_size}x{self.grown_size} px (the sample grid "
                       f"shows that, enlarged); the full-size image is drawn from step {self.growth.full_size_step} on.")
        return model_card(
            title=f"{self.out_dir.name} (gandemo {ARCH_NAMES[cfg.arch]})",
            summary=f"A {cfg.image_size}x{cfg.image_size} {ARCH_NAMES[cfg.arch]} trained with gandemo for {self.step} steps "
                    f"on {self.data.shape[0]} images.{growing} {self.data_summary}".strip(),
            config=self.G_ema.config if hasattr(self.G_ema, "config") else {
                "image_size": cfg.image_size, "channels": cfg.channels, "latent_dim": cfg.latent_dim, "width": cfg.width_g,
                "arch": cfg.arch},
            sections={"Training settings": f"```json\n{settings}\n```\n\nD updates skipped: {self.skipped_d}; "
                      f"NaN recoveries: {self.recoveries}. The weights are the EMA of the generator."},
        )

    @staticmethod
    def resume_config(checkpoint: str | Path) -> TrainConfig:
        return _saved_config(RunFolder(checkpoint))

    @classmethod
    def resume(cls, checkpoint: str | Path, data: torch.Tensor, out_dir: str | Path | None = None,
               steps: int | None = None, device: str | torch.device | None = None) -> Trainer:
        """Continue a run saved by ``save()``; ``steps`` raises the total step count.

        A missing or damaged file raises RunFolderError: one sentence naming the file and what still works."""
        run = RunFolder(checkpoint)
        state = run.check_resumable()
        config = _saved_config(run)
        if steps is not None:
            config.steps = steps
        trainer = cls(data, config, out_dir or run.path, device=device, data_summary=str(state.get("data", "")))
        run.load_weights(trainer.G, run.LIVE)
        run.load_weights(trainer.D, run.DISCRIMINATOR)
        run.load_weights(trainer.G_ema, run.MODEL)
        opt = run.read_optimizers(trainer.device)
        try:
            trainer.opt_g.load_state_dict(opt["opt_g"])
            trainer.opt_d.load_state_dict(opt["opt_d"])
            trainer._rng.set_state(opt["rng"])
            if opt.get("scaler") and trainer.scaler.is_enabled():  # fp16: the loss scale goes on where it was
                trainer.scaler.load_state_dict(opt["scaler"])
        except (RuntimeError, ValueError, KeyError, TypeError) as e:
            raise run.damaged(run.OPTIMIZERS, f"does not match the networks of {run.STATE}'s settings") from e
        trainer._order = opt["order"]
        if "torch_rng" in opt:  # restores the exact random stream: a resumed run equals an uninterrupted one
            torch.set_rng_state(opt["torch_rng"])
            if opt.get("cuda_rng") is not None and trainer.device.type == "cuda":
                torch.cuda.set_rng_state(opt["cuda_rng"], trainer.device)
            trainer._last_d_loss = float(opt.get("last_d_loss", math.inf))
        trainer.dist.decorrelate_rng(config.seed, int(state["step"]))  # torchrun: ranks 1.. draw their own noise
        trainer.step = int(state["step"])
        trainer.skipped_d = int(state.get("skipped_d", 0))
        trainer.recoveries = int(state.get("recoveries", 0))
        trainer.history = list(state.get("history", []))
        # the optimisers' state carries the learning rates in use; the changes' record carries on
        trainer.lr_changes = list(state.get("lr_changes", []))
        return trainer


@torch.no_grad()
def ema_update(ema: torch.nn.Module, live: torch.nn.Module, decay: float, step: int) -> None:
    """One step of an exponential moving average of ``live``'s weights into ``ema`` after training step ``step``
    (0 = off: a copy). Buffers (batch-norm statistics) are copied. The decay warms up, following G closely at first."""
    if decay <= 0:
        ema.load_state_dict(live.state_dict())
        return
    decay = min(decay, (1 + step) / (10 + step))
    torch._foreach_lerp_(list(ema.parameters()), list(live.parameters()), 1 - decay)
    for be, bl in zip(ema.buffers(), live.buffers()):
        be.copy_(bl)


def _next_rates(rates: tuple[float, float], request: dict[str, Any]) -> tuple[float, float]:
    if request.get("factor") is not None:
        return rates[0] * request["factor"], rates[1] * request["factor"]
    return (rates[0] if request.get("lr_g") is None else float(request["lr_g"]),
            rates[1] if request.get("lr_d") is None else float(request["lr_d"]))


def _saved_config(run: RunFolder) -> TrainConfig:
    """The settings a run was trained with, checked like new ones (a damaged state.json says so)."""
    try:
        return TrainConfig.from_dict(run.read_state()["config"]).validate()
    except (InvalidInputError, TypeError) as e:
        raise run.damaged(run.STATE, "holds settings that are not valid") from e


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}
