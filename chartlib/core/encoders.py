"""Encoders: how a chart maps data x (n, D) to latents z (n, d).

An encoder kind is a frozen dataclass (its settings, part of a run's cache key) whose
``build(d_in, d, width, depth, offset)`` returns the network, an ``nn.Module`` with:

* ``draw_noise(n, generator)``: the randomness one encoding needs, (n, d), or None (deterministic);
* ``forward(x, noise) -> (z, parts)``: the latents (n, d) and named parts to record, e.g. the fiber's
  mean and scale;
* ``stats(parts)``: scalars (0-d tensors) to log for a training step.

A new encoder is one class here plus its tests; ``chartlib.core.methods.ChartConfig`` takes any of them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from chartlib.common.checks import check_float

from .data import generator_device
from .nets import mlp


class DeterministicEncoder(nn.Module):
    """z = E(x) (+ a fixed ``offset`` (d,) that starts the latents away from the prior)."""

    def __init__(self, d_in: int, d: int, width: int, depth: int, offset: tuple[float, ...] | None = None):
        super().__init__()
        self.net = mlp(d_in, d, width, depth)
        self.register_buffer("offset", None if offset is None else torch.tensor(offset).float())

    def draw_noise(self, n: int, generator: torch.Generator) -> None:
        return None

    def forward(self, x: torch.Tensor, noise: None = None) -> tuple[torch.Tensor, dict]:
        z = self.net(x).float()      # float32 latents also when the network runs under bfloat16 autocast
        return (z if self.offset is None else z + self.offset), {}

    def stats(self, parts: dict) -> dict[str, torch.Tensor]:
        return {}


class GaussianEncoder(nn.Module):
    """A fiber per data point: z = mu(x) + sigma(x) * eps, eps ~ N(0, I) (reparameterised).

    One MLP gives the mean (n, d) and the log-scale (n, d); the log-scale starts near
    ``init_log_scale``.  Parts: ``mu`` and ``sigma``, each (n, d).
    """

    def __init__(self, d_in: int, d: int, width: int, depth: int, init_log_scale: float,
                 offset: tuple[float, ...] | None = None):
        super().__init__()
        self.d = d
        self.net = mlp(d_in, 2 * d, width, depth)
        self.register_buffer("init_log_scale", torch.tensor(float(init_log_scale)))
        self.register_buffer("offset", torch.zeros(d) if offset is None else torch.tensor(offset).float())

    def draw_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.d, generator=generator, device=generator_device(generator))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, dict]:
        out = self.net(x).float()    # mean, scale and fiber point in float32 also under bfloat16 autocast
        mu, sigma = out[:, :self.d] + self.offset, (out[:, self.d:] + self.init_log_scale).exp()
        return mu + sigma * noise.to(x.device), {"mu": mu, "sigma": sigma}

    def stats(self, parts: dict) -> dict[str, torch.Tensor]:
        return {"sigma": parts["sigma"].detach().mean()}


@dataclass(frozen=True)
class Deterministic:
    """Settings of a deterministic encoder (none)."""

    def build(self, d_in: int, d: int, width: int, depth: int, offset=None) -> DeterministicEncoder:
        return DeterministicEncoder(d_in, d, width, depth, offset)


@dataclass(frozen=True)
class Gaussian:
    """Settings of a Gaussian (fiber) encoder: the log of the fresh encoder's sigma."""

    init_log_scale: float = -1.0

    def __post_init__(self):
        check_float("init_log_scale", self.init_log_scale, -10, 3, low_open=False)

    def build(self, d_in: int, d: int, width: int, depth: int, offset=None) -> GaussianEncoder:
        return GaussianEncoder(d_in, d, width, depth, self.init_log_scale, offset)
