"""Where a chart's latents sit: laws fitted to the training latents, and how a query latent is placed
among them (its distance to the nearest one, and how mixed the digit labels of its neighbours are).

These serve the MNIST chapter's diagnosis of why a chart's samples score worse than its
reconstructions: the decoder fed with latents drawn from ever closer fits of the training latents
(a Gaussian, Gaussian mixtures, the latents themselves) separates the decoder's share of the gap
from the latent law's, and the placement of prior samples tells holes between latents from
places where digit classes meet.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr

from .metrics import exact_cdist

MIXTURE_REG = 1e-4       # added to each component's covariance diagonal (scikit-learn's reg_covar)
MIXTURE_ITERATIONS = 200


def fit_gaussian(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (d,) and covariance (d, d) of latents (n, d), in float64."""
    z = _cloud(latents)
    mean = z.mean(dim=0)
    centred = z - mean
    return mean, centred.T @ centred / (z.shape[0] - 1)


def gaussian_samples(mean: torch.Tensor, cov: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n draws (n, d) float32 from N(mean, cov), from a seeded generator (cov made positive definite
    by a jitter of 1e-6 times its mean variance if it is singular)."""
    d = mean.shape[0]
    jitter = 1e-6 * float(cov.diagonal().mean().clamp_min(1e-12))
    chol = torch.linalg.cholesky_ex(cov + jitter * torch.eye(d, dtype=cov.dtype))[0]
    noise = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=cov.dtype)
    return (mean + noise @ chol.T).float()


def fit_mixture(latents: torch.Tensor, components: int, seed: int):
    """A Gaussian mixture (full covariances) fitted by EM to latents (n, d): scikit-learn's
    ``GaussianMixture``, k-means initialised from ``seed``.  Needs n > components."""
    from sklearn.mixture import GaussianMixture
    z = _cloud(latents)
    if not 1 <= components < z.shape[0]:
        raise ValueError(f"components={components!r} is not allowed: a mixture needs between 1 and n - 1 "
                         f"components for n = {z.shape[0]} latents")
    model = GaussianMixture(components, covariance_type="full", reg_covar=MIXTURE_REG, max_iter=MIXTURE_ITERATIONS,
                            random_state=seed)
    return model.fit(z.numpy())


def mixture_samples(model, n: int, seed: int) -> torch.Tensor:
    """n draws (n, d) float32 from a fitted ``GaussianMixture``, in random order (scikit-learn returns
    them grouped by component), from ``seed``."""
    model.random_state = seed
    z, _ = model.sample(n)
    order = np.random.default_rng(seed).permutation(n)
    return torch.from_numpy(z[order]).float()


def neighbours(queries: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor, k: int,
               chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query (n, d): the distance to its nearest reference latent (m, d), and the share of its
    ``k`` nearest reference latents that carry their most common label (``labels`` (m,)): 1 inside
    one digit's region, near 1/k or 1/10 where classes meet.  Returns two (n,) float tensors."""
    if not 1 <= k <= reference.shape[0]:
        raise ValueError(f"k={k!r} is not allowed: k must be between 1 and the {reference.shape[0]} reference latents")
    if labels.shape != (reference.shape[0],):
        raise ValueError(f"labels {tuple(labels.shape)} must have one entry per reference latent "
                         f"({reference.shape[0]})")
    q, ref = _cloud(queries), _cloud(reference)
    nearest, shares = [], []
    for i in range(0, q.shape[0], chunk):
        dist, idx = exact_cdist(q[i:i + chunk], ref).topk(k, dim=1, largest=False)
        near = labels[idx]                                         # (c, k)
        counts = torch.nn.functional.one_hot(near, int(labels.max()) + 1).sum(dim=1)
        nearest.append(dist[:, 0])
        shares.append(counts.max(dim=1).values.double() / k)
    return torch.cat(nearest).float(), torch.cat(shares).float()


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation of two (n,) series (nan when either is constant)."""
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a {tuple(a.shape)} and b {tuple(b.shape)} must be two series of one length")
    if bool((a == a[0]).all()) or bool((b == b[0]).all()):
        return float("nan")
    return float(spearmanr(a.numpy(), b.numpy()).statistic)


def placement(queries: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor, confidence: torch.Tensor,
              k: int) -> dict:
    """How queries (n, d) sit among labelled reference latents (m, d), against the classifier's confidence
    (n,) in the digit each query decodes to: median nearest-latent distance, mean label share of the k
    nearest latents (:func:`neighbours`), and each one's rank correlation with the confidence.  JSON-ready."""
    if confidence.shape != (queries.shape[0],):
        raise ValueError(f"confidence {tuple(confidence.shape)} must have one entry per query ({queries.shape[0]})")
    distance, share = neighbours(queries, reference, labels, k)
    return {"k": k, "median_distance": float(distance.median()), "mean_share": float(share.mean()),
            "rho_distance_confidence": rank_correlation(distance, confidence.float()),
            "rho_share_confidence": rank_correlation(share, confidence.float())}


def _cloud(points: torch.Tensor) -> torch.Tensor:
    if points.ndim != 2 or points.shape[0] < 2:
        raise ValueError(f"latents must have shape (n >= 2, d), got {tuple(points.shape)}")
    if not bool(torch.isfinite(points).all()):
        raise ValueError("latents contain NaN or infinite values: the chart that made them diverged")
    return points.detach().double().cpu()
