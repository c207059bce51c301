"""The MNIST chapter's diagnosis of one trained chart: why its samples score worse than its
reconstructions.

Four measurements, each per chart and seed:

* the two-NN dimension of the held-out digits' latents and of as many prior samples: whether the
  encoder's latent set is as thick as the prior it is pushed onto;
* the FD of the same decoder fed with latents from ever closer fits of the training latents
  (``decoded_from``): the prior (the chart's samples), a Gaussian fitted to the training latents,
  Gaussian mixtures of a few component counts, and training latents themselves.  The prior and the
  training latents bracket the gap; each fit in between says how much of it a better latent law
  closes, and what is left at the training latents is the decoder's;
* where prior samples and held-out latents sit among the training latents (distance to the nearest
  one, the label share of the nearest ``k``), and the rank correlation of each with the classifier's
  confidence in the decoded digit: holes between latents, or places where digit classes meet;
* the chart with the largest fitted mixture as its sampling prior (a two-stage model that is not the
  research note's method; still one decoder call per sample), scored in full.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from chartlib.measure.latents import (
    fit_gaussian,
    fit_mixture,
    gaussian_samples,
    mixture_samples,
    placement,
)
from chartlib.measure.metrics import two_nn_dimension


def mixture_key(components: int) -> str:
    """Key of a fitted mixture in ``decoded_from``, e.g. ``mixture_10``."""
    return f"mixture_{components}"


def diagnose(decode: Callable[[torch.Tensor], torch.Tensor], train: tuple[torch.Tensor, torch.Tensor],
             held: tuple[torch.Tensor, torch.Tensor], prior: tuple[torch.Tensor, torch.Tensor, float],
             score: Callable[[torch.Tensor], dict], confidence: Callable[[torch.Tensor], torch.Tensor],
             components: tuple[int, ...], neighbours: int, seed: int) -> dict:
    """One chart's diagnosis (JSON-ready).

    ``decode``: latents (n, d) -> images (n, 784).  ``train``: training latents (m, d) and their digit
    labels (m,), the set every law is fitted to.  ``held``: held-out latents (n, d) and their
    reconstructions (n, 784).  ``prior``: the evaluation noise (n, d), its decoded images (n, 784) and
    their FD.  ``score(images)`` gives the scores dict, ``confidence(images)`` the classifier's largest
    class probability (n,).  ``components``: mixture sizes, each below m.  ``seed``: fits and draws.
    """
    (train_z, labels), (held_z, recon), (noise, images, prior_fd) = train, held, prior
    n = noise.shape[0]
    if train_z.shape[0] < n:
        raise ValueError(f"{train_z.shape[0]} training latents cannot stand in for {n} samples: fit_points "
                         f"must be at least n_eval ({n})")
    mean, cov = fit_gaussian(train_z)
    drawn = {"gaussian_fit": gaussian_samples(mean, cov, n, seed)}
    for k in components:
        drawn[mixture_key(k)] = mixture_samples(fit_mixture(train_z, k, seed), n, seed)
    drawn["train_latents"] = train_z[:n]
    decoded_from, mixture_scores = {"prior": prior_fd}, {}
    for name, z in drawn.items():
        scores = score(decode(z))
        decoded_from[name] = scores["fd"]
        if components and name == mixture_key(max(components)):
            mixture_scores = {"components": max(components), "scores": scores}
    return {"latent_two_nn": two_nn_dimension(held_z), "prior_two_nn": two_nn_dimension(noise),
            "decoded_from": decoded_from, "mixture_prior": mixture_scores,
            "placement": {"prior": placement(noise, train_z, labels, confidence(images), neighbours),
                          "held_out": placement(held_z, train_z, labels, confidence(recon), neighbours)}}
