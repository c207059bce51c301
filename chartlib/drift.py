"""The kernel drifting field of Deng et al. (2026), computed in log space.

For movers ``x`` the field is ``V(x) = V+(x) - V-(x)``: attraction towards the positives minus
repulsion from the negatives, under the kernel ``k(x, y) = exp(-|x - y| / tau)`` normalised over
both the rows (movers) and the columns (targets) by ``sqrt(row_sum * column_sum)``.

Writing ``A`` for that normalised kernel, ``W+`` / ``W-`` for its row sums over positives /
negatives and ``m+`` / ``m-`` for the kernel-weighted means of the positives / negatives, the field
of one temperature is ``V = W+ * W- * (m+ - m-)``.  Both means are softmax averages and the
weight ``W+ * W-`` is kept as a logarithm, so nothing underflows however far apart the clouds are
(a plain ``exp(-d / tau)`` gives 0/0 for clouds a few units apart at tau = 0.05).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch


def drift_field(
    x: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperatures: Sequence[float] = (0.05,),
    scale_free: bool = False,
    unit_rms: bool = True,
) -> torch.Tensor:
    """Mean-shift drifting field acting on the movers.

    Args:
        x: movers, shape (n, k).
        positives: samples of the target, shape (p, k).
        negatives: samples of the current distribution, shape (m, k).  ``None`` means the movers
            themselves, with each mover's pairing to itself masked out.
        temperatures: one or several kernel temperatures tau > 0; the fields are summed.
        scale_free: divide all distances by their mean first, so that tau is relative to the
            spread of the points rather than an absolute length.
        unit_rms: rescale each temperature's field to unit root-mean-square over the batch before
            summing (a far-apart cloud otherwise sees forces near 1e-19, too small for Adam).

    Returns:
        The field at every mover, shape (n, k).  Computed without gradients.
    """
    if x.ndim != 2 or positives.ndim != 2 or x.shape[1] != positives.shape[1]:
        raise ValueError(f"x {tuple(x.shape)} and positives {tuple(positives.shape)} must be (n, k) and (p, k)")
    if not temperatures or any(t <= 0 for t in temperatures):
        raise ValueError(f"temperatures must be positive, got {tuple(temperatures)}")
    self_mask = negatives is None
    if negatives is None:
        negatives = x
    if negatives.ndim != 2 or negatives.shape[1] != x.shape[1]:
        raise ValueError(f"negatives {tuple(negatives.shape)} must be (m, {x.shape[1]})")
    if self_mask and x.shape[0] < 2:
        raise ValueError("with the movers as negatives, at least 2 movers are needed")

    with torch.no_grad():
        n, m = x.shape[0], negatives.shape[0]
        targets = torch.cat([negatives, positives], dim=0)          # (m + p, k)
        dist = torch.cdist(x, targets)                              # (n, m + p)
        mask = torch.zeros_like(dist, dtype=torch.bool)
        if self_mask:
            mask[:, :m] = torch.eye(n, dtype=torch.bool, device=x.device)
        if scale_free:
            dist = dist / dist[~mask].mean().clamp_min(torch.finfo(dist.dtype).tiny)

        total = torch.zeros_like(x)
        for tau in temperatures:
            logits = (-dist / tau).masked_fill(mask, -math.inf)
            log_rows = torch.logsumexp(logits, dim=1, keepdim=True)  # (n, 1)
            log_cols = torch.logsumexp(logits, dim=0, keepdim=True)  # (1, m + p)
            log_a = logits - 0.5 * (log_rows + log_cols)            # log of the normalised kernel
            log_a_neg, log_a_pos = log_a[:, :m], log_a[:, m:]
            log_w_neg = torch.logsumexp(log_a_neg, dim=1, keepdim=True)   # (n, 1)
            log_w_pos = torch.logsumexp(log_a_pos, dim=1, keepdim=True)
            mean_pos = torch.softmax(log_a_pos, dim=1) @ positives         # (n, k)
            mean_neg = torch.softmax(log_a_neg, dim=1) @ negatives
            log_weight = log_w_pos + log_w_neg                             # log(W+ * W-)
            if unit_rms:
                # the overall scale drops out, so shift the log-weights before exponentiating
                log_weight = log_weight - log_weight.max()
            field = torch.exp(log_weight) * (mean_pos - mean_neg)
            if unit_rms:
                rms = field.pow(2).sum(dim=1).mean().sqrt()
                field = field / rms.clamp_min(torch.finfo(field.dtype).tiny)
            total = total + field
        return total


def drift_loss(u: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """Drifting loss ``mean |u - sg(u + V)|^2`` over movers u (n, k) and their field V (n, k).

    Its value is ``mean |V|^2``; its gradient moves each u along its V.
    """
    return (u - (u + field).detach()).pow(2).sum(dim=1).mean()
