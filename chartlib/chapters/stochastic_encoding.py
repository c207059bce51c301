"""Chapter 4, stochastic encoding: fibers with the kernel field and with the score critic."""
from __future__ import annotations

from chartlib.runs.arms import Result

from .surface import PROFILES, SurfaceSettings, train

TITLE = "Stochastic encoding"
__all__ = ["PROFILES", "SurfaceSettings", "TITLE", "run"]


def run(s: SurfaceSettings, device=None) -> Result:
    """The deterministic chart, and the stochastic one with the kernel field, with the critic and with the
    critic's failure setting."""
    return train(s, stochastic=True, device=device)
