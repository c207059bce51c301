"""Fields: what gives the movers their velocity.

A field is a frozen dataclass (its settings, part of a run's cache key) with four methods:

* ``build(dim, device)`` returns the object that acts: the field itself when it has no state, or a
  new object that owns networks and optimisers (the score critic);
* ``velocity(movers, target, generator)`` gives the velocity of every mover, shape (n, k), computed
  without gradients; ``target`` is what the movers should become (an object with
  ``sample(n, generator) -> (n, k)``: the data for plain drifting, the prior for a chart), and
  ``generator`` is the run's random stream (a field that samples must draw from it, in a fixed order);
* ``modules()`` the networks to save with the run (none for a kernel field);
* ``stats()`` scalars (0-d tensors) to log for the step just taken.

A new field is one class here (or in a file of its own) plus its tests; the trainers in
``chartlib.methods`` take any of them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .data import StandardNormal, generator_device
from .drift import drift_field
from .nets import mlp
from .params import check_float, check_floats, check_int


@dataclass(frozen=True)
class KernelField:
    """The kernel drifting field of Deng et al. (2026), ``chartlib.drift.drift_field``: attraction to
    ``target`` samples (as many as movers) minus repulsion from the movers themselves.

    ``temperatures``: kernel temperatures (the forces are each rescaled to unit RMS and summed);
    ``scale_free``: temperatures are relative to the mean pairwise distance.
    """

    temperatures: tuple[float, ...] = (0.05,)
    scale_free: bool = False

    def __post_init__(self):
        object.__setattr__(self, "temperatures", check_floats("temperatures", self.temperatures))

    def build(self, dim: int, device) -> "KernelField":
        return self

    def velocity(self, movers: torch.Tensor, target, generator: torch.Generator) -> torch.Tensor:
        positives = target.sample(movers.shape[0], generator).to(movers.device)
        return drift_field(movers.detach(), positives, None, self.temperatures, self.scale_free)

    def modules(self) -> dict[str, nn.Module]:
        return {}

    def stats(self) -> dict[str, torch.Tensor]:
        return {}


@dataclass(frozen=True)
class CriticField:
    """The latent score critic: a small MLP s(z) fitted by denoising score matching to the current
    movers at noise level ``noise`` (``steps`` Adam steps per training step, before the velocity is
    read), giving ``V(z) = -z / (1 + noise^2) - s(z)``: the score of the N(0, I) prior smoothed at the
    same noise minus the critic.  Only for a standard normal target.

    With 1 critic step per iteration the critic cannot keep up with the moving latents: its field is
    mostly noise and the latents are pushed off the prior (measured in the stochastic-encoding
    chapter).
    """

    noise: float = 0.5
    steps: int = 5
    width: int = 128
    depth: int = 3
    lr: float = 1e-3

    def __post_init__(self):
        check_float("critic_noise", self.noise, 0)
        check_int("critic_steps", self.steps, 1)
        check_int("critic_width", self.width, 1)
        check_int("critic_depth", self.depth, 1)
        check_float("critic_lr", self.lr, 0)

    def build(self, dim: int, device) -> "ScoreCritic":
        return ScoreCritic(self, dim, device)


def dsm_loss(critic: nn.Module, z: torch.Tensor, noise: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Denoising score matching at level ``noise`` on samples z (n, d): with z~ = z + noise * e,
    e ~ N(0, I), returns mean |noise * critic(z~) + e|^2, minimised when the critic is the score of
    the samples' law smoothed by N(0, noise^2 I)."""
    e = torch.randn(z.shape, generator=generator, device=generator_device(generator)).to(z.device)
    return (noise * critic(z + noise * e) + e).pow(2).sum(dim=1).mean()


class ScoreCritic:
    """The acting critic field: owns the network s (d -> d) and its own Adam optimiser."""

    def __init__(self, cfg: CriticField, dim: int, device):
        self.cfg = cfg
        self.net = mlp(dim, dim, cfg.width, cfg.depth).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.last_loss: torch.Tensor | None = None

    def velocity(self, movers: torch.Tensor, target, generator: torch.Generator) -> torch.Tensor:
        if not isinstance(target, StandardNormal):
            raise ValueError(f"the score critic needs a standard normal target, got {type(target).__name__}")
        z = movers.detach()
        for _ in range(self.cfg.steps):
            loss = dsm_loss(self.net, z, self.cfg.noise, generator)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        self.last_loss = loss.detach()
        with torch.no_grad():
            return -z / (1 + self.cfg.noise ** 2) - self.net(z)

    def modules(self) -> dict[str, nn.Module]:
        return {"critic": self.net}

    def stats(self) -> dict[str, torch.Tensor]:
        return {} if self.last_loss is None else {"critic": self.last_loss}
