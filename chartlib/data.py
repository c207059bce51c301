"""Toy data sets, generated from a seed."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Bimodal:
    """Two isotropic Gaussians in 2-D with equal weight, centred at (-separation/2, 0) and
    (+separation/2, 0), each with standard deviation ``spread``."""

    separation: float = 4.0
    spread: float = 0.3

    def __post_init__(self):
        if not self.separation > 0:
            raise ValueError(f"separation must be > 0, got {self.separation}")
        if not self.spread > 0:
            raise ValueError(f"spread must be > 0, got {self.spread}")

    @property
    def dim(self) -> int:
        return 2

    @property
    def modes(self) -> torch.Tensor:
        """Mode centres, shape (2, 2)."""
        h = self.separation / 2
        return torch.tensor([[-h, 0.0], [h, 0.0]])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n points, shape (n, 2); the two modes alternate so every batch is balanced."""
        which = torch.arange(n) % 2
        noise = torch.randn(n, 2, generator=generator)
        return self.modes[which] + self.spread * noise


def seeded(seed: int) -> torch.Generator:
    """A CPU generator with the given seed (data are generated on CPU, then moved)."""
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g
