"""Intrinsic dimension with its uncertainty: the two-NN MLE of :mod:`chartlib.measure.metrics`, an exact
confidence interval, the spread over disjoint random subsets, MNIST's value (pixels, features), the
Gride estimate at larger neighbour ranks (dimension against scale) and the dimension against added noise."""
from __future__ import annotations

import math
import time

import torch
from scipy.optimize import minimize_scalar

from . import metrics


def _gamma_quantile(shape: float, q: float) -> float:
    """q-quantile of Gamma(shape, rate 1), by bisection on the regularised incomplete gamma."""
    a = torch.tensor(float(shape), dtype=torch.float64)
    lo, hi = 0.0, shape + 20 * math.sqrt(shape) + 20
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        below = float(torch.special.gammainc(a, torch.tensor(mid, dtype=torch.float64))) < q
        lo, hi = (mid, hi) if below else (lo, mid)
    return 0.5 * (lo + hi)


def two_nn_with_error(points: torch.Tensor, level: float = 0.9) -> dict:
    """Two-NN MLE of a cloud (n, k) with its analytic uncertainty.

    With N ratios, log mu_i ~ Exponential(d) i.i.d. makes d * S ~ Gamma(N, 1) for S = sum log mu, so
    d_hat = (N - 1) / S is unbiased with sd d / sqrt(N - 2) and [g_lo / S, g_hi / S] (Gamma quantiles)
    is an exact ``level`` interval.  It assumes independent ratios and a locally uniform density, so
    it can understate the real error (neighbouring ratios are correlated: 1.5x on a 2-D Gaussian);
    :func:`subset_dimensions` measures the spread instead.  Neither covers the drift with sample size.
    Returns estimate, se, low, high, n_used, dropped (repeated rows removed before the search).
    """
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} is not allowed: level must be in (0, 1)")
    log_mu, dropped = metrics.two_nn_log_ratios(points)
    n, s = log_mu.numel(), float(log_mu.sum().clamp_min(1e-300))
    d = (n - 1) / s
    tail = (1 - level) / 2
    return {"estimate": d, "se": d / math.sqrt(n - 2), "low": _gamma_quantile(n, tail) / s,
            "high": _gamma_quantile(n, 1 - tail) / s, "n_used": n, "dropped": dropped}


def subset_dimensions(points: torch.Tensor, sizes=(1000, 2000, 5000, 10000), repeats: int = 3,
                      seed: int = 0, level: float = 0.9) -> list[dict]:
    """Two-NN MLE on ``repeats`` random subsets of each size drawn from a pool (n, k).

    Subsets of one size are disjoint blocks of one random permutation whenever repeats * size fits
    in the pool (then they are independent samples, and their spread is the estimator's real
    sampling error at that size, neighbour correlations and non-uniform density included);
    otherwise each repeat draws its own permutation (overlapping, ``disjoint`` False: the spread
    understates the error).  Not a bootstrap with replacement: resampled copies are duplicate
    points, which the estimator drops, so a bootstrap would shrink and distort the sample.
    The estimate depends on the size (it is a scale: larger samples probe smaller distances), so
    read it per size.  Per size: n_points, repeats, disjoint, estimates, median, mean, sd (across
    repeats; None for one), low/high (min/max), se (median analytic se), dropped (total).
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats!r} is not allowed: repeats must be >= 1")
    pool = points.shape[0]
    g = torch.Generator().manual_seed(seed)
    first = torch.randperm(pool, generator=g)
    rows = []
    for size in sizes:
        if not 3 <= size <= pool:
            raise ValueError(f"subset size {size} is not allowed: sizes must be in [3, {pool}] (the pool)")
        disjoint = repeats * size <= pool
        picks = [first[j * size:(j + 1) * size] if disjoint else torch.randperm(pool, generator=g)[:size]
                 for j in range(repeats)]
        fits = [two_nn_with_error(points[idx], level) for idx in picks]
        est = torch.tensor([f["estimate"] for f in fits], dtype=torch.float64)
        rows.append({"n_points": int(size), "repeats": repeats, "disjoint": disjoint,
                     "estimates": est.tolist(), "median": float(est.median()), "mean": float(est.mean()),
                     "sd": float(est.std()) if repeats > 1 else None, "low": float(est.min()),
                     "high": float(est.max()), "se": float(torch.tensor([f["se"] for f in fits]).median()),
                     "dropped": sum(f["dropped"] for f in fits)})
    return rows


def mnist_intrinsic_dimension(n_points=(1000, 2000, 5000), repeats: int = 3, seed: int = 0,
                              level: float = 0.9) -> dict:
    """MNIST's two-NN dimension in pixels (784) and in the evaluation classifier's features (128).

    For each space: ``test`` = :func:`two_nn_with_error` on all 10,000 test digits (analytic
    ``level`` interval); ``train`` = :func:`subset_dimensions` on training digits, one row per size
    in ``n_points`` (the pool: max(size * repeats) random digits of the 60,000, so the subsets are
    disjoint when that fits).  Features are the classifier's penultimate ReLU layer
    (:func:`chartlib.measure.classifier.predict`) of the same digits.  JSON-ready; ``seconds`` is wall time
    (defaults: 25 s on 2 CPU cores in a fresh process, 15 s with MNIST already loaded; sizes up to
    10000 with repeats=5 take about 70 s).
    """
    from chartlib.datasets import mnist

    from . import classifier
    start = time.perf_counter()
    model, info = classifier.evaluation_classifier()
    train, test = mnist.digit_images(True), mnist.digit_images(False)
    needed = min(train.shape[0], max((size * repeats for size in n_points), default=3))
    train = train[torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(seed))[:needed]]
    out = {"seed": seed, "level": level, "n_points": list(n_points), "repeats": repeats,
           "classifier_sha256": info["sha256"], "method": "two-NN MLE (Facco et al. 2017)"}
    spaces = {"pixels": (train, test),
              "features": (classifier.predict(model, train)[0], classifier.predict(model, test)[0])}
    for name, (pool, held) in spaces.items():
        out[name] = {"dim": int(pool.shape[1]), "test": two_nn_with_error(held, level),
                     "train": subset_dimensions(pool, n_points, repeats, seed, level)}
    out["seconds"] = time.perf_counter() - start
    return out


def _neighbour_distances(points: torch.Tensor, ranks: int) -> torch.Tensor:
    """Exact distances from each distinct point of a cloud (n, k) to its 1st..``ranks``-th nearest
    other point: (m, ranks), m distinct rows (see :func:`metrics.nearest_distances`)."""
    if points.ndim != 2:
        raise ValueError(f"points must have shape (n, k), got {tuple(points.shape)}")
    if not bool(torch.isfinite(points).all()):
        raise ValueError("points contain NaN or infinite values")
    distinct = torch.unique(points.detach().double(), dim=0)
    return metrics.nearest_distances(distinct, ranks, candidates=ranks + 8)


def gride_log_ratios(points: torch.Tensor, k: int) -> torch.Tensor:
    """log(r_2k / r_k) for each distinct point of a cloud (n, dim): shape (m,), points with r_k = 0 or
    r_k = r_2k (ties, zero likelihood) left out.  k = 1 gives the two-NN ratios."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r} is not allowed: k must be an integer >= 1")
    n = points.shape[0] if points.ndim == 2 else 0
    distinct = torch.unique(points.detach(), dim=0).shape[0] if points.ndim == 2 else 0
    if not 2 * k < distinct:
        raise ValueError(f"k={k} is not allowed: 2k must be below the number of distinct points "
                         f"({distinct} of n={n}), so that every point has a 2k-th neighbour")
    r = _neighbour_distances(points, 2 * k)
    log_mu = (r[:, 2 * k - 1] / r[:, k - 1]).log()
    log_mu = log_mu[(r[:, k - 1] > 0) & (log_mu > 0)]
    if log_mu.numel() < 3:
        raise ValueError("gride needs at least 3 points with r_2k > r_k > 0")
    return log_mu


def gride_log_likelihood(log_mu: torch.Tensor, k: int, d: float) -> float:
    """Summed log-density of ratios mu = r_2k / r_k (given as log mu, shape (m,)) at dimension d.

    With the 2k nearest neighbours of a point inside a ball of locally constant density, mu has
    density f(mu) = d (mu^d - 1)^(k-1) mu^-((2k-1) d + 1) / B(k, k) on mu > 1 (Denti et al. 2022,
    n1 = k, n2 = 2k); k = 1 is the two-NN Pareto law d mu^-(d+1).  log(mu^d - 1) is computed as
    d log mu + log(1 - mu^-d) so that it stays finite for large d.
    """
    lm = log_mu.double()
    log_beta = 2 * math.lgamma(k) - math.lgamma(2 * k)
    tail = (k - 1) * (d * lm + torch.log(-torch.expm1(-d * lm))) if k > 1 else torch.zeros_like(lm)
    return float((math.log(d) + tail - ((2 * k - 1) * d + 1) * lm).sum()) - lm.numel() * log_beta


def gride(x: torch.Tensor, k: int = 1, bounds: tuple[float, float] = (1e-3, 1e3)) -> float:
    """Gride maximum-likelihood dimension of a cloud x (n, dim) from the ratios r_2k / r_k (Denti, Doimo,
    Laio, Mira 2022): the d in ``bounds`` maximising :func:`gride_log_likelihood`.

    Larger k probes a larger scale (the 2k-th neighbour) and is less sensitive to noise at the
    smallest distances; k = 1 is the two-NN MLE N / sum(log mu) (not the unbiased (N - 1) form of
    :func:`two_nn_with_error`).  Duplicate rows are dropped first.  Needs 1 <= k and 2k < n.
    """
    log_mu = gride_log_ratios(x, k)
    fit = minimize_scalar(lambda d: -gride_log_likelihood(log_mu, k, d), bounds=bounds, method="bounded",
                          options={"xatol": 1e-10, "maxiter": 500})
    return float(fit.x)


def scale_curve(x: torch.Tensor, ranks=(1, 2, 4, 8, 16)) -> list[dict]:
    """Gride dimension of a cloud x (n, dim) at each neighbour rank k in ``ranks``: the dimension
    against scale (the 2k-th neighbour distance grows with k).  JSON-ready {"k", "dimension"} rows."""
    return [{"k": int(k), "dimension": gride(x, k)} for k in ranks]


def noise_study(x: torch.Tensor, sigmas=(0.0, 0.01, 0.1, 1.0), seed: int = 0) -> list[dict]:
    """Two-NN dimension of x (n, dim) plus isotropic Gaussian noise N(0, sigma^2 I) of each sigma in
    ``sigmas`` (one seeded generator, so the rows repeat with the seed).  Noise well above the
    nearest-neighbour distance fills the ambient space and the estimate rises toward dim: the
    dimension depends on the noise level.  JSON-ready {"sigma", "dimension"} rows."""
    sigmas = [float(s) for s in sigmas]
    for s in sigmas:
        if not (math.isfinite(s) and s >= 0):
            raise ValueError(f"sigma={s!r} is not allowed: sigma must be finite and >= 0")
    g = torch.Generator().manual_seed(seed)
    base = x.detach().double()
    rows = []
    for s in sigmas:
        noisy = base + s * torch.randn(base.shape, generator=g, dtype=torch.float64)
        rows.append({"sigma": s, "dimension": float(metrics.two_nn_dimension(noisy))})
    return rows


def mnist_scale_study(n_points: int = 5000, ranks=(1, 2, 4, 8, 16, 32), sigmas=(0.0, 0.01, 0.03, 0.1, 0.3),
                      seed: int = 0) -> dict:
    """MNIST's dimension against scale, on ``n_points`` random test digits (pixels in [0, 1]): the Gride
    estimate at each neighbour rank k (:func:`scale_curve`), and the two-NN estimate with Gaussian pixel
    noise of each sigma added (:func:`noise_study`; sigma = 0.1 moves a digit by about 2.8 in L2,
    against typical nearest-neighbour distances of 4 to 6).  JSON-ready; ``seconds`` is wall time."""
    from chartlib.datasets import mnist
    start = time.perf_counter()
    test = mnist.digit_images(False)
    if not 3 <= n_points <= test.shape[0]:
        raise ValueError(f"n_points={n_points!r} is not allowed: between 3 and {test.shape[0]} test digits")
    x = test[torch.randperm(test.shape[0], generator=torch.Generator().manual_seed(seed))[:n_points]]
    return {"n_points": n_points, "seed": seed, "ranks": scale_curve(x, ranks), "noise": noise_study(x, sigmas, seed),
            "seconds": time.perf_counter() - start}
