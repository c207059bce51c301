"""The kernel drifting field of Deng et al. (2026) as a field object."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from chartlib.common.checks import check_floats

from ..drift import drift_field


@dataclass(frozen=True)
class KernelField:
    """The kernel drifting field of Deng et al. (2026), ``chartlib.core.drift.drift_field``: attraction to
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
