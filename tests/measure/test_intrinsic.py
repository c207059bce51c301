"""The two-NN estimate with its uncertainty (chartlib.measure.intrinsic) on clouds of known dimension."""
from __future__ import annotations

import json
import math

import pytest
import torch

from chartlib.measure import intrinsic, metrics


def _gaussian_subspace(n: int, d: int, seed: int) -> torch.Tensor:
    """n points of a standard Gaussian on a random d-dimensional linear subspace of R^(3d)."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(3 * d, d, generator=g, dtype=torch.float64))
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ basis.T


def _torus(n: int, d: int, seed: int) -> torch.Tensor:
    """n uniform points of the flat d-torus (S^1)^d in R^(2d): no boundary, constant density."""
    angles = torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 * math.pi
    return torch.cat([angles.cos(), angles.sin()], dim=1)


@pytest.mark.parametrize("d", [2, 5, 10])
def test_estimate_on_a_linear_subspace(d):
    # Under the model d_hat has sd d / sqrt(N - 2) (0.22 at d = 10, N = 2000); measured over seeds the
    # finite-sample bias here is below 1 sd (about -0.25 at d = 10), so 4 sd holds with room to spare.
    # (A uniform cube is biased low by its boundary, -1.3 at d = 10; the torus high, see below.)
    n = 2000
    fit = intrinsic.two_nn_with_error(_gaussian_subspace(n, d, seed=d))
    assert abs(fit["estimate"] - d) < 4 * d / math.sqrt(n - 2), fit
    assert fit["se"] == pytest.approx(fit["estimate"] / math.sqrt(n - 2))
    assert fit["low"] < fit["estimate"] < fit["high"]
    # for large N the Gamma interval is the normal one, +-1.645 se at level 0.9
    assert fit["high"] - fit["low"] == pytest.approx(2 * 1.6449 * fit["se"], rel=0.02)
    assert fit["n_used"] == n and fit["dropped"] == 0


def test_estimate_on_a_torus():
    # d = 2 only: at d = 10 the nearest neighbours of 2000 points lie ~2.7 rad apart, where the chord
    # metric of the embedded torus is far from flat and the estimate comes out near 12.
    n = 2000
    fit = intrinsic.two_nn_with_error(_torus(n, 2, seed=0))
    assert abs(fit["estimate"] - 2) < 4 * 2 / math.sqrt(n - 2), fit


def test_gamma_quantiles_are_exact():
    for q in (0.05, 0.5, 0.95):   # Gamma(1) is Exponential(1); Gamma(2) has CDF 1 - e^-x (1 + x)
        assert intrinsic._gamma_quantile(1, q) == pytest.approx(-math.log1p(-q), rel=1e-9)
        x = intrinsic._gamma_quantile(2, q)
        assert 1 - math.exp(-x) * (1 + x) == pytest.approx(q, abs=1e-12)


def test_uncertainty_shrinks_with_more_points():
    cloud = _gaussian_subspace(16000, 5, seed=1)
    small = intrinsic.two_nn_with_error(cloud[:500])
    large = intrinsic.two_nn_with_error(cloud[:4000])
    assert large["se"] < small["se"] / 2 and large["high"] - large["low"] < (small["high"] - small["low"]) / 2
    rows = intrinsic.subset_dimensions(cloud, sizes=(250, 2000), repeats=8, seed=0)
    assert [r["disjoint"] for r in rows] == [True, True]
    assert rows[1]["sd"] < rows[0]["sd"]
    assert all(len(r["estimates"]) == 8 and r["low"] <= r["median"] <= r["high"] for r in rows)
    json.dumps(rows)  # JSON-ready


def test_subsets_overlap_only_when_they_must_and_repeat_with_the_seed():
    cloud = _gaussian_subspace(1000, 3, seed=2)
    a = intrinsic.subset_dimensions(cloud, sizes=(200, 600), repeats=2, seed=5)
    assert [r["disjoint"] for r in a] == [True, False]
    assert a == intrinsic.subset_dimensions(cloud, sizes=(200, 600), repeats=2, seed=5)
    one = intrinsic.subset_dimensions(cloud, sizes=(200,), repeats=1)
    assert one[0]["sd"] is None


def test_duplicates_are_dropped_and_counted():
    cloud = _gaussian_subspace(1000, 4, seed=3)
    doubled = torch.cat([cloud, cloud[:150], cloud[:10]])
    clean, fit = intrinsic.two_nn_with_error(cloud), intrinsic.two_nn_with_error(doubled)
    assert fit["dropped"] == 160 and fit["n_used"] == 1000
    assert fit["estimate"] == pytest.approx(clean["estimate"], rel=1e-9)
    rows = intrinsic.subset_dimensions(doubled, sizes=(1160,), repeats=1)
    assert rows[0]["dropped"] == 160


def test_bad_input_is_refused():
    cloud = _gaussian_subspace(100, 2, seed=4)
    with pytest.raises(ValueError, match="n >= 3"):
        intrinsic.two_nn_with_error(cloud[:2])
    with pytest.raises(ValueError, match="3 distinct points"):
        intrinsic.two_nn_with_error(torch.cat([cloud[:2], cloud[:2]]))
    bad = cloud.clone()
    bad[7, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        intrinsic.two_nn_with_error(bad)
    with pytest.raises(ValueError, match="level"):
        intrinsic.two_nn_with_error(cloud, level=1.0)
    with pytest.raises(ValueError, match="subset size 200"):
        intrinsic.subset_dimensions(cloud, sizes=(50, 200))
    with pytest.raises(ValueError, match="repeats"):
        intrinsic.subset_dimensions(cloud, sizes=(50,), repeats=0)


def _gaussian_in_20(n: int, d: int, seed: int) -> torch.Tensor:
    """n points of a standard Gaussian on a random d-dimensional linear subspace of R^20."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(20, d, generator=g, dtype=torch.float64))
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ basis.T


def _gride_se(log_mu: torch.Tensor, k: int, d: float) -> float:
    """Model standard error of the Gride MLE: 1 / sqrt(observed information), by a central difference."""
    h = 1e-3 * d
    f = [intrinsic.gride_log_likelihood(log_mu, k, t) for t in (d - h, d, d + h)]
    return 1 / math.sqrt(-(f[0] - 2 * f[1] + f[2]) / h ** 2)


@pytest.mark.parametrize("d", [2, 5])
@pytest.mark.parametrize("k", [1, 4])
def test_gride_on_a_linear_subspace(d, k):
    # The model se is 1 / sqrt(observed information): d / sqrt(N) at k = 1 (0.045 at d = 2, 0.11 at
    # d = 5, N = 2000), about half that at k = 4.  Over 12 seeds the estimate's real spread was 1.5x
    # the model se at d = 2 (neighbouring ratios are correlated) and 1.0x at d = 5, with a bias below
    # 0.6 se, so 5 model se is more than 3 real sd.  (A uniform cube is biased low by its boundary,
    # -10 se at d = 5, k = 4, so the cloud is Gaussian.)
    x = _gaussian_in_20(2000, d, seed=d)
    estimate = intrinsic.gride(x, k)
    se = _gride_se(intrinsic.gride_log_ratios(x, k), k, estimate)
    assert abs(estimate - d) < 5 * se, (estimate, se)


def test_gride_at_k1_is_the_closed_form_two_nn_mle():
    x = _gaussian_in_20(1500, 3, seed=7)
    log_mu, _ = metrics.two_nn_log_ratios(x)          # independent of gride's neighbour search
    assert intrinsic.gride(x, 1) == pytest.approx(log_mu.numel() / float(log_mu.sum()), rel=1e-6)


def test_scale_curve_and_noise_study():
    plane = _gaussian_in_20(2000, 2, seed=11)
    curve = intrinsic.scale_curve(plane, ranks=(1, 2, 4, 8))
    assert [r["k"] for r in curve] == [1, 2, 4, 8]
    assert all(abs(r["dimension"] - 2) < 0.3 for r in curve), curve
    sigmas = (0.0, 0.01, 0.1, 1.0, 10.0)
    rows = intrinsic.noise_study(plane, sigmas, seed=0)
    json.dumps(curve + rows)  # JSON-ready
    dims = [r["dimension"] for r in rows]
    assert [r["sigma"] for r in rows] == list(sigmas)
    assert abs(dims[0] - 2) < 0.3
    # nearest neighbours of 2000 plane points lie ~0.03 apart: noise far above that fills R^20, where
    # the two-NN MLE of 2000 points is itself biased low (about 17.5 for a 20-D Gaussian)
    assert dims[-1] > 15 and dims[-1] > dims[2] > dims[0], dims
    assert rows == intrinsic.noise_study(plane, sigmas, seed=0)


def test_gride_bad_input_is_refused():
    cloud = _gaussian_in_20(20, 2, seed=4)
    for k in (0, -1, 1.5):
        with pytest.raises(ValueError, match="k="):
            intrinsic.gride(cloud, k)
    with pytest.raises(ValueError, match="k=10"):
        intrinsic.gride(cloud, 10)                  # 2k = 20 points: no 2k-th neighbour
    with pytest.raises(ValueError, match="k=0"):
        intrinsic.scale_curve(cloud, ranks=(1, 0))
    with pytest.raises(ValueError, match="sigma"):
        intrinsic.noise_study(cloud, (0.1, -0.5))
