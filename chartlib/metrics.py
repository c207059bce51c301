"""Measurements on samples: mode shares, distribution distances."""
from __future__ import annotations

import torch


def mode_fractions(samples: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
    """Share of samples (n, k) whose nearest mode centre (c, k) is each mode: shape (c,), sums to 1."""
    nearest = torch.cdist(samples.float(), modes.float()).argmin(dim=1)
    return torch.bincount(nearest, minlength=modes.shape[0]).float() / samples.shape[0]


def far_fraction(samples: torch.Tensor, modes: torch.Tensor, radius: float) -> float:
    """Share of samples (n, k) farther than ``radius`` from every mode centre (c, k)."""
    return (torch.cdist(samples.float(), modes.float()).min(dim=1).values > radius).float().mean().item()


def modes_held(fractions: torch.Tensor, at_least: float = 0.10) -> int:
    """How many modes hold at least the given share of the samples."""
    return int((fractions >= at_least).sum())


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| between samples x (n, k) and y (m, k).

    Within-sample means exclude the zero self-pairs (U-statistics), so two independent samples of
    one distribution give values scattered around 0 (slightly negative values are possible).
    """
    x, y = x.double(), y.double()
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError("energy_distance needs at least 2 points in each sample")
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).sum() / (n * (n - 1))
    yy = torch.cdist(y, y).sum() / (m * (m - 1))
    return float(2 * xy - xx - yy)
