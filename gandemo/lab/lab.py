"""The live 2D GAN: one small G, one small D, a toy data set, and a step you can take in halves.

A *step* is D's phase (``d_steps`` updates of D) followed by G's phase (``g_steps`` updates of
G). The UI can run it whole (:meth:`Lab.train_step`, :meth:`Lab.run`) or in halves
(:meth:`Lab.phase_d`, then :meth:`Lab.phase_g`) to show who moves when. All randomness comes
from one ``torch.Generator`` seeded by ``config.seed`` (network initialisation from a forked
global RNG seeded the same way), so the same config gives bit-identical runs on one machine.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch

from ..errors import InvalidInputError
from .config import FIELD_RULES, LabConfig, check_value
from .data import ToyData, make_dataset
from .metrics import density_distance, mode_coverage, point_spread
from .nets import Discriminator, Generator, d_loss, g_loss_per_sample, r1_penalty, real_score

METRIC_SAMPLES = 2000  # samples behind every coverage / density number
METRICS_EVERY = 25  # steps between coverage entries in the history (cheap, but not free)


def _optimiser(kind: str, params: Any, lr: float) -> torch.optim.Optimizer:
    # beta1 = 0.5 is the DCGAN choice: the default 0.9 carries too much momentum for a game
    # whose target (the other network) keeps moving.
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))
    return torch.optim.SGD(params, lr=lr)


class Lab:
    """A running 2D GAN. See the module docstring for steps and phases.

    ``history`` holds one dict per completed step: step, loss_d (None if D did not update in the
    step), loss_g (None if G did not), d_real, d_fake, grad_g_norm, lr_g, lr_d, d_skipped (D updates
    skipped by ``d_skip_threshold``), lr_changed (True on the first step after
    :meth:`set_learning_rates`), and every ``METRICS_EVERY`` steps (and at step 1) the
    :meth:`metrics` coverage keys: modes_covered, modes_total, high_quality, density_distance,
    spread, center_x, center_y.
    """

    def __init__(self, config: LabConfig) -> None:
        self.reset(config)

    def reset(self, config: LabConfig | None = None) -> None:
        """Start over from step 0, with ``config`` if given (needed for architecture/data changes)."""
        self.config = copy.deepcopy(config if config is not None else self.config).validate()
        c = self.config
        points = torch.tensor(c.custom_points, dtype=torch.float32) if c.dataset == "custom" else None
        self.data: ToyData = make_dataset(c.dataset, c.n_points, c.data_seed, points)
        self.generator = torch.Generator().manual_seed(c.seed)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(c.seed)
            self.G = Generator(c.noise_dim, c.g_layers, c.g_units, c.activation)
            self.D = Discriminator(c.d_layers, c.d_units, c.activation, c.minibatch_discrimination)
        self.opt_g = _optimiser(c.opt_g, self.G.parameters(), c.lr_g)
        self.opt_d = _optimiser(c.opt_d, self.D.parameters(), c.lr_d)
        self.step = 0
        self.phase = ""
        self.history: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        # Fixed noise and a fixed real sample: the drawing and the metrics compare like with like
        # from step to step, and measuring never consumes the training generator.
        self.fixed_noise = self.sample_noise(METRIC_SAMPLES, torch.Generator().manual_seed(c.seed + 1))
        self.real_reference = self.data.sample(METRIC_SAMPLES, torch.Generator().manual_seed(c.data_seed + 1))
        self._last: dict[str, Any] = {"loss_d": None, "loss_g": None, "d_real": None, "d_fake": None,
                                      "grad_g_norm": 0.0}
        self._step_counts = {"d": 0, "g": 0, "skipped": 0}
        self._lr_changed = False

    # --- noise -------------------------------------------------------------------------------
    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        g = generator or self.generator
        if self.config.noise == "uniform":
            return torch.rand(n, self.config.noise_dim, generator=g) * 2 - 1
        return torch.randn(n, self.config.noise_dim, generator=g)

    def noise_grid_lines(self, lines: int = 11, points: int = 41) -> list[torch.Tensor]:
        """Regular lines in noise space (a grid in 2D, one segment in 1D). Under G they show how
        G bends and folds the noise plane onto the data; a fold piling up = collapse."""
        extent = 1.0 if self.config.noise == "uniform" else 2.0
        along = torch.linspace(-extent, extent, points)
        if self.config.noise_dim == 1:
            return [torch.linspace(-extent, extent, 4 * points).unsqueeze(1)]
        out = []
        for v in torch.linspace(-extent, extent, lines):
            fixed = torch.full_like(along, float(v))
            out += [torch.stack([along, fixed], 1), torch.stack([fixed, along], 1)]
        return out

    # --- training ----------------------------------------------------------------------------
    def _d_update(self) -> None:
        c = self.config
        real = self.data.sample(c.batch_size, self.generator)
        with torch.no_grad():
            fake = self.G(self.sample_noise(c.batch_size))
        logits_real, logits_fake = self.D(real), self.D(fake)
        loss = d_loss(logits_real, logits_fake, c.loss, c.label_smoothing)
        # The lesson's remedy for a D that wins too easily: while its loss is already low, let G
        # catch up instead of making D even sharper.
        if c.d_skip_threshold > 0 and float(loss.detach()) < c.d_skip_threshold:
            self._step_counts["skipped"] += 1
        else:
            total = loss + c.gp_weight / 2 * r1_penalty(self.D, real) if c.gp_weight > 0 else loss
            self.opt_d.zero_grad(set_to_none=True)
            total.backward()
            self.opt_d.step()
        self._step_counts["d"] += 1
        self._last.update(
            loss_d=float(loss.detach()),
            d_real=float(real_score(logits_real.detach(), c.loss).mean()),
            d_fake=float(real_score(logits_fake.detach(), c.loss).mean()),
        )

    def _g_update(self) -> None:
        c = self.config
        self.D.requires_grad_(False)  # G's phase must not touch D (and need not pay for its grads)
        try:
            logits = self.D(self.G(self.sample_noise(c.batch_size)))
            loss = g_loss_per_sample(logits, c.loss).mean()
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            self.D.requires_grad_(True)
        grads = [p.grad.pow(2).sum() for p in self.G.parameters() if p.grad is not None]
        self.opt_g.step()
        self._step_counts["g"] += 1
        self._last.update(
            loss_g=float(loss.detach()),
            d_fake=float(real_score(logits.detach(), c.loss).mean()),
            grad_g_norm=float(torch.stack(grads).sum().sqrt()) if grads else 0.0,
        )

    def phase_d(self) -> None:
        """D's phase: ``d_steps`` updates of D, G frozen. The step stays open (``phase == "d"``)
        until :meth:`phase_g`; calling phase_d again runs D's phase again within the same step."""
        for _ in range(self.config.d_steps):
            self._d_update()
        self.phase = "d"

    def phase_g(self) -> None:
        """G's phase: ``g_steps`` updates of G, D frozen; this completes the step (``step += 1``)
        even if no D phase ran in it."""
        for _ in range(self.config.g_steps):
            self._g_update()
        self._finish_step()

    def train_step(self) -> None:
        """One whole step: D's phase then G's. If a D phase is already pending (``phase == "d"``)
        only G's phase runs, so a step never gets D's phase twice by accident."""
        if self.phase != "d":
            self.phase_d()
        self.phase_g()

    def run(self, steps: int, should_stop: Callable[[], bool] | None = None) -> int:
        """Take up to ``steps`` steps, checking ``should_stop`` before each; returns steps taken."""
        done = 0
        while done < steps and not (should_stop is not None and should_stop()):
            self.train_step()
            done += 1
        return done

    def _finish_step(self) -> None:
        self.step += 1
        self.phase = ""
        counts = self._step_counts
        record = {
            "step": self.step,
            "loss_d": self._last["loss_d"] if counts["d"] else None,
            "loss_g": self._last["loss_g"] if counts["g"] else None,
            "d_real": self._last["d_real"],
            "d_fake": self._last["d_fake"],
            "grad_g_norm": self._last["grad_g_norm"] if counts["g"] else 0.0,
            "lr_g": self.config.lr_g,
            "lr_d": self.config.lr_d,
            "d_skipped": counts["skipped"],
        }
        if self._lr_changed:
            record["lr_changed"] = True
            self._lr_changed = False
        if self.step == 1 or self.step % METRICS_EVERY == 0:
            record.update(self.coverage())
        self.history.append(record)
        self._step_counts = {"d": 0, "g": 0, "skipped": 0}

    # --- live changes ------------------------------------------------------------------------
    def set_learning_rates(self, lr_g: float | None = None, lr_d: float | None = None) -> None:
        """Change the learning rates from the next update on (Adam's moments are kept); the next
        history entry gets ``lr_changed: True`` and :attr:`events` a record, for plot markers."""
        for name, value, opt in (("lr_g", lr_g, self.opt_g), ("lr_d", lr_d, self.opt_d)):
            if value is None:
                continue
            check_value(name, value)
            setattr(self.config, name, float(value))
            for group in opt.param_groups:
                group["lr"] = float(value)
        self._lr_changed = True
        self.events.append({"step": self.step, "kind": "lr", "lr_g": self.config.lr_g, "lr_d": self.config.lr_d})

    def update_config(self, **changes: Any) -> None:
        """Apply live settings (see :data:`FIELD_RULES`, ``live=True``: lr_g, lr_d, loss, d_steps,
        g_steps, label_smoothing, gp_weight, d_skip_threshold) now. Others change the networks or the
        data and raise :class:`InvalidInputError`: use :meth:`reset` with a new config for them."""
        new = self.config.replace(**changes)
        fixed = sorted(k for k in changes if k not in FIELD_RULES or not FIELD_RULES[k].live)
        if fixed:
            raise InvalidInputError(
                f"{', '.join(fixed)} can't change while the lab runs; reset the lab with the new setting."
            )
        new.validate()
        lrs = {k: changes[k] for k in ("lr_g", "lr_d") if k in changes and changes[k] != getattr(self.config, k)}
        for name in changes:
            if name not in ("lr_g", "lr_d"):
                setattr(self.config, name, getattr(new, name))
        if lrs:
            self.set_learning_rates(**lrs)
        if "loss" in changes:
            self.events.append({"step": self.step, "kind": "loss", "loss": self.config.loss})

    def set_loss(self, loss: str) -> None:
        self.update_config(loss=loss)

    # --- measuring ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.G(self.fixed_noise if noise is None else noise)

    @torch.no_grad()
    def coverage(self) -> dict[str, Any]:
        """Coverage of the fixed-noise sample (see :mod:`gandemo.lab.metrics`)."""
        fake = self.generate()
        out: dict[str, Any] = {"modes_covered": None, "modes_total": None, "high_quality": None}
        if self.data.is_mixture:
            covered, total, quality = mode_coverage(fake, self.data.modes, self.data.sigma)
            out.update(modes_covered=covered, modes_total=total, high_quality=quality)
        centre = fake.mean(0)
        out.update(
            density_distance=density_distance(self.real_reference, fake),
            spread=point_spread(fake),
            center_x=float(centre[0]),
            center_y=float(centre[1]),
        )
        return out

    @torch.no_grad()
    def metrics(self) -> dict[str, Any]:
        """Now: coverage keys, plus mean D(x) on real and D(G(z)) on fixed-noise points, the last
        losses, G's last gradient norm and the step."""
        out = {"step": self.step, **self.coverage()}
        loss = self.config.loss
        out["d_real"] = float(real_score(self.D(self.real_reference), loss).mean())
        out["d_fake"] = float(real_score(self.D(self.generate()), loss).mean())
        out["loss_d"], out["loss_g"] = self._last["loss_d"], self._last["loss_g"]
        out["grad_g_norm"] = self._last["grad_g_norm"]
        return out

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-exactly: config, step, both networks and optimisers,
        the RNG state and the history. A deep copy: the optimisers' own state_dicts share their
        moment tensors, which a second lab loading them would then update in place too."""
        return copy.deepcopy({
            "config": asdict(self.config), "step": self.step, "phase": self.phase,
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "rng": self.generator.get_state(), "history": self.history,
            "events": self.events, "last": self._last,
        })

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset(LabConfig(**state["config"]))
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.generator.set_state(state["rng"])
        self.step, self.phase = state["step"], state["phase"]
        self.history, self.events = copy.deepcopy(state["history"]), copy.deepcopy(state["events"])
        self._last = dict(state["last"])
