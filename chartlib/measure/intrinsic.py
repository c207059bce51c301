"""Intrinsic dimension with its uncertainty: the two-NN MLE of :mod:`chartlib.measure.metrics`, an exact
confidence interval, the spread over disjoint random subsets, and MNIST's value (pixels, features)."""
from __future__ import annotations

import math
import time

import torch

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
