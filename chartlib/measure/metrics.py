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


def exact_cdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (n, m) between rows of a (n, k) and b (m, k), from coordinate differences.

    ``torch.cdist``'s default for more than 25 rows expands |a - b|^2 = |a|^2 + |b|^2 - 2 a.b and
    takes a matrix product: fast, but its round-off leaves identical rows about 1e-7 apart instead
    of 0 (relative to the coordinates' size) and biases sums of many distances.  This is the direct
    computation; it is several times slower at hundreds of dimensions, so callers chunk the rows.
    """
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _distance_sum(a: torch.Tensor, b: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Sum of all exact distances between rows of a (n, k) and b (m, k), in a's dtype; the
    (chunk, m) blocks bound the memory."""
    total = a.new_zeros(())
    for i in range(0, a.shape[0], chunk):
        total = total + exact_cdist(a[i:i + chunk], b).sum()
    return total


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| between samples x (n, k) and y (m, k).

    Within-sample means exclude the zero self-pairs (U-statistics), so two independent samples of
    one distribution give values scattered around 0 (slightly negative values are possible).
    Distances are exact float64 differences (:func:`exact_cdist`): the three means nearly cancel,
    so the matrix-product shortcut's round-off would not.
    """
    x, y = x.detach().double(), y.detach().double()
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError("energy_distance needs at least 2 points in each sample")
    xy = _distance_sum(x, y) / (n * m)
    xx = _distance_sum(x, x) / (n * (n - 1))
    yy = _distance_sum(y, y) / (m * (m - 1))
    return float(2 * xy - xx - yy)


def nearest_distance(a: torch.Tensor, b: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Distance from each row of a (n, k) to its nearest row of b (m, k): shape (n,); exact (a row
    of a that also appears in b gets 0)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or b.shape[0] < 1:
        raise ValueError(f"a {tuple(a.shape)} and b {tuple(b.shape)} must be (n, k) and (m >= 1, k)")
    a, b = a.detach().double(), b.detach().double()
    out = [exact_cdist(a[i:i + chunk], b).min(dim=1).values for i in range(0, a.shape[0], chunk)]
    return torch.cat(out).float() if out else torch.zeros(0)


def nearest_distances(points: torch.Tensor, ranks: int, chunk: int = 2048, candidates: int = 8) -> torch.Tensor:
    """Exact distances from each point (n, k) to its 1st..``ranks``-th nearest other point: (n, ranks).

    The fast matrix-product distances (float64, centred cloud) only pick ``max(ranks, candidates)``
    neighbours per point; those are then measured exactly, so round-off can change which point is chosen
    only among near-ties, never the returned distance (10x faster than exact search at 784 dimensions).
    """
    p = points.detach().double()
    p = p - p.mean(dim=0)                                    # round-off scales with |x|^2: centre first
    k = min(max(ranks, candidates), p.shape[0] - 1)
    out = []
    for i in range(0, p.shape[0], chunk):
        block = p[i:i + chunk]
        d = torch.cdist(block, p)
        rows = torch.arange(d.shape[0])
        d[rows, rows + i] = float("inf")                     # not its own neighbour
        near = d.topk(k, dim=1, largest=False).indices      # (b, k)
        exact = (block[:, None, :] - p[near]).norm(dim=2)   # (b, k), from coordinate differences
        out.append(exact.topk(ranks, dim=1, largest=False).values)
    return torch.cat(out)


def _two_nearest(points: torch.Tensor, chunk: int = 2048, candidates: int = 8) -> torch.Tensor:
    """Exact distances from each point (n, k) to its first and second nearest other point: (n, 2)."""
    return nearest_distances(points, 2, chunk, candidates)


def two_nn_log_ratios(points: torch.Tensor) -> tuple[torch.Tensor, int]:
    """log(r2 / r1) for each distinct point of a cloud (n, k): shape (m,), and how many of the n rows
    were dropped (n - m): repeated rows (each distinct point counted once) and, rarely, distinct rows
    that underflow to 0 apart.  Under the two-NN model these are i.i.d. Exponential(rate d)."""
    if points.ndim != 2 or points.shape[0] < 3:
        raise ValueError(f"points must have shape (n >= 3, k), got {tuple(points.shape)}")
    if not bool(torch.isfinite(points).all()):
        raise ValueError("points contain NaN or infinite values")
    distinct = torch.unique(points.detach().double(), dim=0)
    if distinct.shape[0] < 3:
        raise ValueError("two_nn_dimension needs at least 3 distinct points")
    r = _two_nearest(distinct)
    keep = r[:, 0] > 0                                       # only if distinct rows underflow to 0 apart
    log_mu = (r[keep, 1] / r[keep, 0]).log()
    if log_mu.numel() < 3:
        raise ValueError("two_nn_dimension needs at least 3 distinct points")
    return log_mu, points.shape[0] - log_mu.numel()


def two_nn_dimension(points: torch.Tensor, method: str = "mle", discard: float = 0.1) -> float:
    """Intrinsic dimension of a cloud (n, k) by the two-nearest-neighbour estimator (Facco et al. 2017).

    With r1, r2 the distances to a point's first and second neighbours, mu = r2 / r1 follows a
    Pareto law P(mu > m) = m^-d when the density is roughly constant over the two radii.
    ``method="mle"`` (the default) returns the maximum-likelihood value d = (N - 1) / sum(log mu)
    (unbiased form); ``method="regression"`` fits -log(1 - F(mu)) = d log mu through the origin
    on the empirical distribution, leaving out the largest ``discard`` share of mu as in the paper
    (``discard`` must then be > 0: the largest mu has F = 1, where -log(1 - F) is infinite).
    Duplicate points are dropped first (each distinct point counted once, as in the paper), so a
    repeated point neither gives r1 = 0 nor makes r1 = r2 for its neighbours; distances are exact
    (:func:`two_nn_log_ratios` gives the per-point log mu; chartlib.measure.intrinsic adds uncertainty).
    """
    if method not in ("mle", "regression"):
        raise ValueError(f"method={method!r} is not allowed: method must be one of 'mle', 'regression'")
    if not 0 <= discard < 1:
        raise ValueError(f"discard={discard!r} is not allowed: discard must be in [0, 1)")
    if method == "regression" and not discard > 0:
        raise ValueError(f"discard={discard!r} is not allowed with method='regression': discard must be "
                         f"in (0, 1), since the largest mu has empirical CDF 1 and -log(1 - F) = inf there "
                         f"(Facco et al. use 0.1)")
    log_mu, _ = two_nn_log_ratios(points)
    n = log_mu.numel()
    if method == "mle":
        return float((n - 1) / log_mu.sum().clamp_min(1e-300))
    x = log_mu.sort().values
    f_emp = torch.arange(1, n + 1, dtype=x.dtype) / n          # empirical CDF at the sorted values
    m = min(max(int(n * (1 - discard)), 2), n - 1)            # never the last one (F = 1)
    x, y = x[:m], -torch.log1p(-f_emp[:m])
    return float((x * y).sum() / (x * x).sum())


def off_surface_rate(dist: torch.Tensor, threshold: float) -> float:
    """Share of distances (n,) to the surface that exceed ``threshold``."""
    if not threshold >= 0:
        raise ValueError(f"threshold={threshold!r} is not allowed: threshold must be >= 0")
    return float((dist > threshold).float().mean())


def coverage_ratio(prior: torch.Tensor, latents: torch.Tensor) -> float:
    """How well the latents (n, k) cover the prior samples (n, k); equal sizes are required.

    median over prior samples of the distance to the nearest latent, divided by the median
    distance from a prior sample to its nearest other prior sample.  About 1 (slightly below,
    since no point is excluded) when the latents are distributed like the prior; well above 1
    when the latents leave holes the prior fills (a thin surface inside a 3-D Gaussian).
    """
    if prior.ndim != 2 or prior.shape != latents.shape or prior.shape[0] < 2:
        raise ValueError(f"prior {tuple(prior.shape)} and latents {tuple(latents.shape)} must both be (n >= 2, k)")
    to_latents = nearest_distance(prior, latents).median()
    to_prior = _two_nearest(prior)[:, 0].median()
    return float(to_latents / to_prior)
