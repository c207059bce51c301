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


# Rows of movers are processed in blocks of at most this many distance-matrix entries (64 MB in
# float32 per temporary): training batches fit in one block, and a call with 8192 movers against
# 16384 targets keeps its peak memory bounded instead of growing as n x (m + p).
MAX_BLOCK_ELEMENTS = 1 << 24


def drift_field(
    x: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperatures: Sequence[float] = (0.05,),
    scale_free: bool = False,
    unit_rms: bool = True,
    max_block_elements: int | None = MAX_BLOCK_ELEMENTS,
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
        max_block_elements: largest block of the (n, m + p) distance matrix held at once.  When the
            whole matrix is larger, the movers are taken in blocks of rows and the column sums are
            accumulated over the blocks first, so the field is the same; ``None`` never splits.

    Returns:
        The field at every mover, shape (n, k).  Computed without gradients.
    """
    if x.ndim != 2 or positives.ndim != 2 or x.shape[1] != positives.shape[1]:
        raise ValueError(f"x {tuple(x.shape)} and positives {tuple(positives.shape)} must be (n, k) and (p, k)")
    if not temperatures or any(t <= 0 for t in temperatures):
        raise ValueError(f"temperatures must be positive, got {tuple(temperatures)}")
    if max_block_elements is not None and max_block_elements < 1:
        raise ValueError(f"max_block_elements must be a positive number of entries or None, got {max_block_elements}")
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
        cols = targets.shape[0]
        rows = n if max_block_elements is None else max(1, min(n, max_block_elements // cols))
        blocks = [(lo, min(lo + rows, n)) for lo in range(0, n, rows)]
        kept: dict = {}

        def block(lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
            """Distances (hi - lo, m + p) from movers lo:hi to the targets, and the self-mask."""
            if (lo, hi) in kept:
                return kept[(lo, hi)]
            dist = torch.cdist(x[lo:hi], targets)
            mask = torch.zeros_like(dist, dtype=torch.bool)
            if self_mask:
                own = torch.arange(lo, hi, device=x.device)
                mask[own - lo, own] = True
            if len(blocks) == 1:                                    # one block: compute it once
                kept[(lo, hi)] = dist, mask
            return dist, mask

        scale = 1.0
        if scale_free:
            total_dist = sum(block(lo, hi)[0].masked_fill(block(lo, hi)[1], 0).sum() for lo, hi in blocks)
            scale = (total_dist / (n * cols - (n if self_mask else 0))).clamp_min(torch.finfo(x.dtype).tiny)

        def logits(lo: int, hi: int, tau: float) -> torch.Tensor:
            dist, mask = block(lo, hi)
            return (-(dist / scale) / tau).masked_fill(mask, -math.inf)

        # column normalisers need every row: accumulate them block by block first
        log_cols = {tau: torch.full((1, cols), -math.inf, dtype=x.dtype, device=x.device) for tau in temperatures}
        for lo, hi in blocks:
            for tau in temperatures:
                log_cols[tau] = torch.logaddexp(log_cols[tau], torch.logsumexp(logits(lo, hi, tau), dim=0, keepdim=True))

        parts: dict = {tau: ([], []) for tau in temperatures}       # log(W+ * W-) (n, 1) and m+ - m- (n, k)
        for lo, hi in blocks:
            for tau in temperatures:
                lg = logits(lo, hi, tau)
                log_rows = torch.logsumexp(lg, dim=1, keepdim=True)          # (rows, 1)
                log_a = lg - 0.5 * (log_rows + log_cols[tau])                 # log of the normalised kernel
                log_a_neg, log_a_pos = log_a[:, :m], log_a[:, m:]
                log_w_neg = torch.logsumexp(log_a_neg, dim=1, keepdim=True)
                log_w_pos = torch.logsumexp(log_a_pos, dim=1, keepdim=True)
                mean_pos = torch.softmax(log_a_pos, dim=1) @ positives        # (rows, k)
                mean_neg = torch.softmax(log_a_neg, dim=1) @ negatives
                parts[tau][0].append(log_w_pos + log_w_neg)
                parts[tau][1].append(mean_pos - mean_neg)

        total = torch.zeros_like(x)
        for tau in temperatures:
            log_weight, diff = torch.cat(parts[tau][0]), torch.cat(parts[tau][1])
            if unit_rms:
                # the overall scale drops out, so shift the log-weights before exponentiating
                log_weight = log_weight - log_weight.max()
            field = torch.exp(log_weight) * diff
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
