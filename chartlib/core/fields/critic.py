"""The latent score critic: a field with a network of its own, fitted by denoising score matching."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from chartlib.common.checks import check_float, check_int

from ..data import StandardNormal, generator_device
from ..nets import mlp


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


def dsm_loss(critic: nn.Module, z: torch.Tensor, noise: float,
             generator: torch.Generator | None = None) -> torch.Tensor:
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
