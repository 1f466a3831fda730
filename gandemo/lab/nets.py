"""The lab's two tiny networks and the four GAN losses, written out so each reads as its formula.

D returns a logit. ``real_score`` maps it to the "how real" number the lesson plots as D(x):
the sigmoid for the log-losses and hinge, the raw output clamped to [0, 1] for least squares
(whose targets are 0 and 1 on the raw output).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import LOSSES

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh, "elu": nn.ELU}
__all__ = ["ACTIVATIONS", "LOSSES", "Discriminator", "Generator", "d_loss", "g_loss_per_sample", "mlp", "r1_penalty",
           "real_score"]


def mlp(inputs: int, outputs: int, layers: int, units: int, activation: str) -> nn.Sequential:
    """``layers`` hidden layers of ``units``; zero layers is a plain affine map."""
    parts: list[nn.Module] = []
    width = inputs
    for _ in range(layers):
        parts += [nn.Linear(width, units), ACTIVATIONS[activation]()]
        width = units
    parts.append(nn.Linear(width, outputs))
    return nn.Sequential(*parts)


class Generator(nn.Module):
    def __init__(self, noise_dim: int, layers: int, units: int, activation: str) -> None:
        super().__init__()
        self.net = mlp(noise_dim, 2, layers, units, activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """An MLP on points; with ``minibatch_std`` it also sees how spread out the whole batch is.

    The extra input is the batch's standard deviation (mean over x and y), the 2D version of
    ProGAN's minibatch-std feature: a collapsed G makes batches with a tiny spread, which D can
    then tell from real batches, and G's gradient through that feature pushes its points apart.
    """

    def __init__(self, layers: int, units: int, activation: str, minibatch_std: bool = False) -> None:
        super().__init__()
        self.minibatch_std = minibatch_std
        self.net = mlp(2 + int(minibatch_std), 1, layers, units, activation)

    @staticmethod
    def batch_spread(x: torch.Tensor) -> torch.Tensor:
        return x.std(0, unbiased=False).mean() if len(x) > 1 else x.new_zeros(())

    def forward(self, x: torch.Tensor, spread: torch.Tensor | float | None = None) -> torch.Tensor:
        """Logits (N,). ``spread`` overrides the batch feature, e.g. when D is drawn over a grid
        of the plane (whose own spread means nothing) with the real data's spread."""
        if self.minibatch_std:
            s = self.batch_spread(x) if spread is None else torch.as_tensor(spread, dtype=x.dtype)
            x = torch.cat([x, s.expand(len(x), 1)], 1)
        return self.net(x).squeeze(1)


def real_score(logits: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "least_squares":
        return logits.clamp(0, 1)
    return torch.sigmoid(logits)


def d_loss(real: torch.Tensor, fake: torch.Tensor, loss: str, real_target: float = 1.0) -> torch.Tensor:
    """D's loss from its logits on a real and a fake batch; ``real_target`` < 1 is one-sided
    label smoothing (for hinge it shrinks the real margin the same way)."""
    if loss in ("minimax", "nonsaturating"):  # the two differ only in G's loss
        return F.binary_cross_entropy_with_logits(real, torch.full_like(real, real_target)) + F.softplus(fake).mean()
    if loss == "least_squares":
        return 0.5 * ((real - real_target) ** 2).mean() + 0.5 * (fake**2).mean()
    if loss == "hinge":
        return F.relu(real_target - real).mean() + F.relu(1 + fake).mean()
    raise ValueError(loss)


def g_loss_per_sample(fake: torch.Tensor, loss: str) -> torch.Tensor:
    """G's loss for each generated point (the renderer's arrows need it per point).

    minimax minimises log(1 - D(G(z))) = -softplus(logit): its slope vanishes where D is sure a
    point is fake, which is the lesson's vanishing gradient; nonsaturating minimises
    -log D(G(z)) = softplus(-logit), steep exactly there.
    """
    if loss == "minimax":
        return -F.softplus(fake)
    if loss == "nonsaturating":
        return F.softplus(-fake)
    if loss == "least_squares":
        return 0.5 * (fake - 1) ** 2
    if loss == "hinge":
        return -fake
    raise ValueError(loss)


def r1_penalty(d: Discriminator, real: torch.Tensor, spread: torch.Tensor | None = None) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean squared norm of D's input gradient on real points.

    It flattens D around the data, so D can't grow arbitrarily steep walls that stall G.
    """
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(real, spread).sum(), real, create_graph=True)
    return grad.pow(2).sum(1).mean()
