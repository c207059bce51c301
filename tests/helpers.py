"""Helpers shared by several test files (imported as ``tests.helpers``: a class defined here can be
unpickled in the run cache's worker processes, which find the repository root on their path)."""
from __future__ import annotations

from chartlib.core.data import Bimodal


class NaNData(Bimodal):
    """Bimodal data with a NaN in the first coordinate of every batch: training must stop at step 0."""

    def sample(self, n, generator=None):
        out = super().sample(n, generator)
        out[0, 0] = float("nan")
        return out
