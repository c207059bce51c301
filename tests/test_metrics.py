"""Metrics on inputs with known answers."""
import math

import pytest
import torch

from chartlib import metrics


def test_mode_fractions_and_modes_held():
    modes = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])
    samples = torch.tensor([[-1.9, 0.1]] * 3 + [[2.2, -0.3]] * 1)
    frac = metrics.mode_fractions(samples, modes)
    torch.testing.assert_close(frac, torch.tensor([0.75, 0.25]))
    assert metrics.modes_held(frac) == 2
    assert metrics.modes_held(torch.tensor([0.95, 0.05])) == 1


def test_far_fraction():
    modes = torch.tensor([[0.0, 0.0]])
    samples = torch.tensor([[0.5, 0.0], [0.0, 2.0], [3.0, 0.0], [0.1, 0.1]])
    assert metrics.far_fraction(samples, modes, radius=1.0) == 0.5


def test_energy_distance_known_values():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1500, 2, generator=g), torch.randn(1500, 2, generator=g)
    assert abs(metrics.energy_distance(a, b)) < 0.01
    # two point masses at distance d: 2d - 0 - 0
    x, y = torch.zeros(10, 1), torch.full((10, 1), 3.0)
    assert math.isclose(metrics.energy_distance(x, y), 6.0, rel_tol=1e-9)
    # shifting one sample increases it, and it is symmetric
    c = b + torch.tensor([1.0, 0.0])
    assert metrics.energy_distance(a, c) > 0.3
    assert math.isclose(metrics.energy_distance(a, c), metrics.energy_distance(c, a), rel_tol=1e-9)
    with pytest.raises(ValueError):
        metrics.energy_distance(a[:1], b)
