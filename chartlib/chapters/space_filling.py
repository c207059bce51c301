"""Chapter 3, space filling: the deterministic chart of a thin surface in 3-D."""
from __future__ import annotations

from chartlib.runs.arms import Result

from .surface import PROFILES, SurfaceSettings, train

TITLE = "Space filling"
__all__ = ["PROFILES", "SurfaceSettings", "TITLE", "run"]


def run(s: SurfaceSettings, device=None) -> Result:
    """The deterministic 3-D chart over seeds."""
    return train(s, stochastic=False, device=device)
