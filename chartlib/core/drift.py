"""The kernel drifting field of Deng et al. (2026), computed in log space.

For movers ``x`` the field is ``V(x) = V+(x) - V-(x)``: attraction towards the positives minus
repulsion from the negatives, under the kernel ``k(x, y) = exp(-|x - y| / tau)`` normalised over
both the rows (movers) and the columns (targets) by ``sqrt(row_sum * column_sum)``.

Writing ``A`` for that normalised kernel, ``W+`` / ``W-`` for its row sums over positives /
negatives and ``m+`` / ``m-`` for the kernel-weighted means of the positives / negatives, the field
of one temperature is ``V = W+ * W- * (m+ - m-)``.  Both means are ratios of sums taken with a
shift in the exponent and the weight ``W+ * W-`` is kept as a logarithm, so nothing underflows
however far apart the clouds are (a plain ``exp(-d / tau)`` gives 0/0 for clouds a few units
apart at tau = 0.05).

How it is computed (``drift_field``): the targets (negatives, then positives) are taken in blocks
of columns, each block against all movers, so every column's normaliser is complete within its
block.  With logits ``L = -d / tau`` (d divided by the mean distance first when scale-free), one
exponential per entry and temperature, ``E = exp(L - max over the column)``, gives the column
log-sum-exp ``c``; since ``A = exp(L - r / 2 - c / 2)`` with ``r`` the row log-sum-exp, every row
quantity is a product of ``E`` with a few columns: ``E @ [u * targets, u, w]`` with
``u = exp(max_col L - c / 2 - shift)`` and ``w = exp(max_col L - shift)`` yields, per row, the
kernel-weighted sum of targets, ``W`` up to the row factor ``exp(-r / 2)``, and ``exp(r)``, each up
to a known scalar shift; the blocks are added up with those shifts.  In many dimensions ``E``'s
columns are scaled by ``u`` instead of copying the targets, and in a single block its rows by
``+-1 / W`` as well, so that one product gives ``m+ - m-``.  A row whose sums come out too small
for full float precision (a mover far outside every cloud) is recomputed exactly with per-row
shifts, so the field is the same as the direct log-space formula to float rounding.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .denormals import FlushDenormals
from .kernel_sums import MAX_BLOCK_ELEMENTS, log_weights_and_differences


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
        max_block_elements: largest block of the (n, m + p) distance matrix worked on at once.
            When the whole matrix is larger, the targets are taken in blocks of columns (each
            against all movers) and the per-mover sums are accumulated over the blocks, so the
            field is the same; with ``scale_free`` up to ``KEPT_BLOCKS`` blocks of distances are
            kept between the two passes and the others computed again.  ``None`` never splits.

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
    negatives = x if self_mask else negatives
    if negatives.ndim != 2 or negatives.shape[1] != x.shape[1]:
        raise ValueError(f"negatives {tuple(negatives.shape)} must be (m, {x.shape[1]})")
    if self_mask and x.shape[0] < 2:
        raise ValueError("with the movers as negatives, at least 2 movers are needed")

    with torch.no_grad(), FlushDenormals(x.device) as flush:
        parts = log_weights_and_differences(x, positives, negatives, tuple(temperatures), scale_free,
                                            self_mask, max_block_elements, flush)
        total = torch.empty_like(x, memory_format=torch.contiguous_format)
        for i, (log_weight, diff) in enumerate(parts):      # one at a time; diff transposed: (k, n)
            if unit_rms:       # the overall scale drops out, so shift the log-weights before exponentiating
                weight = torch.exp(log_weight - log_weight.max())
                rms = (weight.square() * torch.linalg.vector_norm(diff, dim=0).square()).mean().sqrt()
                weight /= rms.clamp_min(torch.finfo(x.dtype).tiny)
            else:
                weight = torch.exp(log_weight)
            if i == 0:
                torch.mul(diff.T, weight[:, None], out=total)
            else:
                total.addcmul_(diff.T, weight[:, None])
        return total


def drift_loss(u: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """Drifting loss ``mean |u - sg(u + V)|^2`` over movers u (n, k) and their field V (n, k).

    Its value is ``mean |V|^2``; its gradient moves each u along its V.
    """
    return (u - (u + field).detach()).pow(2).sum(dim=1).mean()
