"""Metrics on inputs with known answers."""
import math

import pytest
import torch

from chartlib.measure import metrics


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


def _energy_reference(x, y):
    """Energy distance from float64 coordinate differences, summed row block by row block."""
    x, y = x.double(), y.double()

    def total(a, b):
        return sum(float((a[i:i + 25, None, :] - b[None]).pow(2).sum(-1).sqrt().sum())
                   for i in range(0, a.shape[0], 25))
    n, m = x.shape[0], y.shape[0]
    return 2 * total(x, y) / (n * m) - total(x, x) / (n * (n - 1)) - total(y, y) / (m * (m - 1))


def test_energy_distance_is_exact_at_784_dimensions():
    # MNIST-sized vectors from two close distributions: the three means nearly cancel, so the
    # matrix-product distances' round-off (about 3e-7 of the result before) would show
    g = torch.Generator().manual_seed(0)
    a = torch.rand(300, 784, generator=g)
    b = torch.rand(300, 784, generator=g) * 0.98
    got, want = metrics.energy_distance(a, b), _energy_reference(a, b)
    assert want > 0
    assert math.isclose(got, want, rel_tol=1e-10), (got, want, (got - want) / want)
    # a sample against itself shifted by nothing: exactly the within-sample terms cancel
    assert math.isclose(metrics.energy_distance(a, a), _energy_reference(a, a), rel_tol=1e-10, abs_tol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_two_nn_dimension_ignores_duplicate_points(scale):
    # 10-D uniform cube, then 100 of its points repeated: the repeats must not change the estimate
    g = torch.Generator().manual_seed(0)
    cube = torch.rand(1000, 10, generator=g) * scale
    doubled = torch.cat([cube, cube[:100]])[torch.randperm(1100, generator=g)]
    for method in ("mle", "regression"):
        clean = metrics.two_nn_dimension(cube, method)
        assert 7.5 < clean < 10.5, (method, clean)
        assert metrics.two_nn_dimension(doubled, method) == pytest.approx(clean, rel=1e-9), method


def test_two_nn_regression_needs_a_discard():
    cloud = torch.rand(200, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="discard=0 is not allowed with method='regression'"):
        metrics.two_nn_dimension(cloud, "regression", discard=0)
    assert math.isfinite(metrics.two_nn_dimension(cloud, "mle", discard=0))
    assert math.isfinite(metrics.two_nn_dimension(cloud, "regression", discard=0.01))
    with pytest.raises(ValueError, match="3 distinct points"):
        metrics.two_nn_dimension(torch.zeros(10, 3))


def test_two_nearest_matches_the_exact_search_far_from_the_origin():
    # the fast search picks candidates by matrix products; the distances must still be the exact ones,
    # also for a small cloud 1e4 away from the origin (where |x|^2 round-off would swamp the spread)
    g = torch.Generator().manual_seed(0)
    cloud = 1e4 + torch.rand(600, 50, generator=g, dtype=torch.float64) * 1e-2
    exact = metrics.exact_cdist(cloud, cloud)
    exact.fill_diagonal_(float("inf"))
    want = exact.topk(2, dim=1, largest=False).values
    got = metrics._two_nearest(cloud, chunk=256)
    assert torch.allclose(got, want, rtol=1e-9, atol=0)


# ---------------------------------------------------------------------------------------------
# the space-filling metrics (chapters 3 and 4)

def test_two_nn_dimension_on_known_clouds():
    # MLE and regression forms; for n = 2000 the MLE's standard error is about d / sqrt(n) (0.07 at
    # d = 3) and the square's edges bias it slightly, so we allow +-0.25.
    g = torch.Generator().manual_seed(0)
    square = torch.rand(2000, 2, generator=g) * 4 - 2
    rotation = torch.linalg.qr(torch.randn(3, 3, generator=g))[0]
    sheet = torch.cat([square, torch.zeros(2000, 1)], dim=1) @ rotation    # flat square inside 3-D
    blob = torch.randn(2000, 3, generator=g)
    for method in ("mle", "regression"):
        assert abs(metrics.two_nn_dimension(sheet, method) - 2) < 0.25
        assert abs(metrics.two_nn_dimension(blob, method) - 3) < 0.25
    with pytest.raises(ValueError, match="method"):
        metrics.two_nn_dimension(blob, "pca")


def test_off_surface_nearest_and_coverage():
    assert metrics.off_surface_rate(torch.tensor([0.0, 0.2, 0.5, 1.0]), 0.3) == 0.5
    a, b = torch.tensor([[0.0, 0.0], [3.0, 0.0]]), torch.tensor([[0.0, 1.0], [3.0, -2.0], [9.0, 9.0]])
    assert torch.allclose(metrics.nearest_distance(a, b), torch.tensor([1.0, 2.0]))
    g = torch.Generator().manual_seed(1)
    prior, same = torch.randn(1500, 3, generator=g), torch.randn(1500, 3, generator=g)
    flat = same.clone()
    flat[:, 2] = 0
    assert 0.85 < metrics.coverage_ratio(prior, same) < 1.15
    assert metrics.coverage_ratio(prior, flat) > 2.5          # a sheet leaves the prior's bulk uncovered
    with pytest.raises(ValueError):
        metrics.coverage_ratio(prior, same[:10])
