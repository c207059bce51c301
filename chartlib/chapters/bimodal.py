"""Settings both 2-D chapters share (mode collapse, chart transport): the bimodal data, seeds, steps,
the kernel temperature and the evaluation sample."""
from __future__ import annotations

from dataclasses import dataclass

from chartlib.common.checks import check_float, check_int
from chartlib.core.data import Bimodal


@dataclass(frozen=True)
class BimodalSettings:
    """What the two 2-D chapters share: seeds, steps, the two modes, the kernel temperature and the
    size of the evaluation sample."""

    seeds: int = 5
    steps: int = 2000
    separation: float = 4.0
    spread: float = 0.3
    temperature: float = 0.05                     # separation / tau = 80: plain drifting collapses
    n_eval: int = 2000

    def __post_init__(self):
        check_int("seeds", self.seeds, 1, 50)
        check_int("steps", self.steps, 1)
        check_float("separation", self.separation, 0)
        check_float("spread", self.spread, 0)
        check_float("temperature", self.temperature, 0)
        check_int("n_eval", self.n_eval, 10)

    @property
    def data(self) -> Bimodal:
        return Bimodal(self.separation, self.spread)
