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

import math
from collections.abc import Sequence
from contextlib import contextmanager

import torch

# Blocks of the (movers x targets) distance matrix hold at most this many entries (64 MB in
# float32 per temporary): training batches fit in one block, and a call with 8192 movers against
# 16384 targets keeps its peak memory bounded instead of growing as n x (m + p).
MAX_BLOCK_ELEMENTS = 1 << 24
# With scale-free distances the mean distance is needed before any kernel value, so the distances
# are computed in a first pass; up to this many blocks of them are kept for the second pass (at the
# default block size 512 MB in float32: all of 8192 movers against 16384 targets), the rest are
# computed again.
KEPT_BLOCKS = 8
# A row whose shifted sums fall below _EXACT_BELOW * (targets) * (smallest normal) / (machine
# epsilon) may have lost precision to underflow and is recomputed with per-row shifts.
_EXACT_BELOW = 16.0


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

    with torch.no_grad(), _FlushDenormals(x.device) as flush:
        parts = _log_weights_and_differences(x, positives, negatives, tuple(temperatures), scale_free,
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


class _ShiftedSum:
    """A running sum of ``exp(shift) * value`` kept as ``value`` and a scalar ``shift``."""

    def __init__(self):
        self.value: torch.Tensor | None = None
        self.shift = -math.inf

    def add(self, value: torch.Tensor, shift: float):
        if self.value is None:
            self.value, self.shift = value, shift
        elif shift > self.shift:
            self.value, self.shift = self.value.mul_(math.exp(self.shift - shift)).add_(value), shift
        else:
            self.value.add_(value, alpha=math.exp(shift - self.shift))


def _log_weights_and_differences(x, positives, negatives, temperatures, scale_free, self_mask, max_block_elements,
                                 flush: "_FlushDenormals"):
    """Yields per temperature log(W+ * W-) (n,) and (m+ - m-) transposed (k, n): see the module docstring.

    With all targets in one block (training batches) each temperature is yielded as soon as its
    products are in; its (m+ - m-) lives in a buffer the next temperature overwrites, so the caller
    uses it before asking for the next (fresh buffers per temperature cost up to 30 % at k = 784).

    The distances are the product torch.cdist uses (so they round as it does).  The per-mover sums
    of a (movers, targets) block are ``block @ rhs``, computed as ``rhs.T @ block.T`` when rhs has
    few columns (the faster layout there) and read as (k + 2, n) either way.
    """
    n, k, m = x.shape[0], x.shape[1], negatives.shape[0]
    cols = m + positives.shape[0]
    budget = n * cols if max_block_elements is None else max_block_elements
    width = max(1, min(cols, budget // n))
    starts = range(0, cols, width)
    info = torch.finfo(x.dtype)
    floor = math.log(info.tiny) + 1.0       # exp below this is slow (subnormal) and its value negligible
    new = dict(dtype=x.dtype, device=x.device)
    few = k + 2 <= 128      # few columns: the transposed product is faster (up to 3x at k = 2)
    one_block = len(starts) == 1
    merged = one_block and not few      # one product for m+ - m- over both parts, 1 / W and the sign in e
    # torch.exp (MKL's) took 4x as long as exp2(logits * log2 e) on this project's AMD CPU, which needs no floor
    # (scaling the scalar instead doubled the error of far clouds); few columns keep exp and the toy runs' bits
    exp_ = (lambda t: t.clamp_min_(floor).exp_()) if few else (lambda t: t.mul_(1.0 / math.log(2.0)).exp2_())

    # A call's scratch is one allocation carved into views: as separate tensors it went back to the OS
    # after each call and page-faulted in again (glibc trims past twice its largest recent allocation).
    sizes = {"ta": cols * (k + 2), "xa": n * (k + 2), "e": n * width,
             "rhs": min(width, max(m, cols - m)) * (k + 2) if few else 0,
             "products": (n * k if merged else 2 * n * (k + 2)) if one_block else 0}   # reused by every temperature
    sizes = {name: -(-size // 16) * 16 for name, size in sizes.items()}    # 64-byte aligned views
    scratch = dict(zip(sizes, torch.empty(sum(sizes.values()), **new).split(list(sizes.values()))))

    # squared distances as one product: |x|^2 + |t|^2 - 2 x.t = [-2x, |x|^2, 1] . [t, 1, |t|^2]
    ta = scratch["ta"][: cols * (k + 2)].view(cols, k + 2)             # targets: negatives, then positives
    torch.mul(negatives, negatives, out=ta[:m, :k])
    torch.mul(positives, positives, out=ta[m:, :k])
    ta[:, k + 1] = ta[:, :k].sum(1)                                     # squared norms, summed as cdist does
    ta[:m, :k], ta[m:, :k], ta[:, k] = negatives, positives, 1.0
    xa = scratch["xa"][: n * (k + 2)].view(n, k + 2)
    xa[:, k] = ta[:m, k + 1] if self_mask else torch.mul(x, x, out=xa[:, :k]).sum(1)
    torch.mul(x, -2.0, out=xa[:, :k])
    xa[:, k + 1] = 1.0

    def distances(lo: int, hi: int, out: torch.Tensor | None = None) -> torch.Tensor:
        if few or not self_mask or lo > 0 or hi < m:
            return torch.mm(xa, ta[lo:hi].T, out=out).clamp_min_(0).sqrt_()
        out = torch.empty(n, hi, **new) if out is None else out        # movers against movers are symmetric:
        for r, t in ((r, min(r + 64, n)) for r in range(0, n, 64)):     # rows r..t against columns r.., the
            torch.mm(xa[r:t], ta[r:hi].T, out=out[r:t, r:])                # rest mirrored (a third less time
            out[r:t, :r] = out[:r, r:t].T                                   # at n = 4096)
        return out.clamp_min_(0).sqrt_()

    def own(block: torch.Tensor, lo: int, hi: int) -> torch.Tensor | None:
        """The entries of a (n, hi - lo) block that pair a mover with itself, as a view."""
        top = min(hi, m)
        return block[lo:top, : top - lo].diagonal() if self_mask and lo < m else None

    def reused(flat: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
        return flat[: rows * columns].view(rows, columns)

    kept: dict[int, torch.Tensor] = {}
    spare = torch.empty(n * width, **new) if not scale_free or len(starts) > KEPT_BLOCKS else None   # blocks not kept
    scale = 1.0
    if scale_free:
        total = torch.zeros((), **new)
        for lo in starts:
            hi = min(lo + width, cols)
            keep = len(kept) < KEPT_BLOCKS
            dist = distances(lo, hi, None if keep else reused(spare, n, hi - lo))
            diag = own(dist, lo, hi)
            if diag is not None:
                diag.fill_(0.0)
            total += dist.sum()
            if keep:
                kept[lo] = dist
            del dist, diag
        scale = (total / (n * cols - (n if self_mask else 0))).clamp_min(info.tiny).item()

    sums = [(_ShiftedSum(), _ShiftedSum(), _ShiftedSum()) for _ in temperatures]   # neg, pos, exp(r)
    log_cols = [torch.empty(cols, **new) for _ in temperatures]
    ones = torch.ones(n, **new)
    products = scratch["products"].chunk(2) if one_block else None
    threshold = _EXACT_BELOW * cols * info.tiny / info.eps             # below: recompute the row exactly

    def finished(i: int, diff: torch.Tensor | None = None):
        """Temperature i's (log weight, diff), its badly served rows recomputed exactly."""
        log_w, diff, bad = _finish(*sums[i], k, threshold, diff)
        _recompute_rows(bad.nonzero().flatten(), log_w, diff, temperatures[i], log_cols[i], xa, ta, m, scale,
                        self_mask, max(1, budget // cols))
        return log_w, diff

    for lo in starts:
        hi = min(lo + width, cols)
        dist = kept.pop(lo) if lo in kept else distances(lo, hi, reused(spare, n, hi - lo))
        diag = own(dist, lo, hi)
        if diag is not None:
            diag.fill_(math.inf)
        nearest = dist.amin(dim=0)                                          # (hi - lo,)
        e = reused(scratch["e"], n, hi - lo)
        e_own = own(e, lo, hi)
        for i, tau in enumerate(temperatures):
            a = -1.0 / (scale * tau)
            col_max = nearest * a                                           # each target's largest logit
            exp_(torch.add(nearest * -a, dist, alpha=a, out=e))                # exp(logits - col max)
            if e_own is not None:
                e_own.fill_(0.0)
            log_col_sum = torch.mv(e.T, ones).log_()
            log_cols[i][lo:hi] = col_max + log_col_sum
            phi = (col_max - log_col_sum).mul_(0.5)                         # col max - c / 2
            if not few:             # exp(r) with one shift for both parts: what that loses is below threshold
                shift_w = col_max.max().item()
                sums[i][2].add(torch.mv(e, torch.exp(col_max - shift_w)), shift_w)
            for part, (plo, phi_) in enumerate(((lo, min(hi, m)), (max(lo, m), hi))):
                if plo >= phi_:
                    continue
                s = slice(plo - lo, phi_ - lo)
                shift_u = phi[s].max().item()
                u = (phi[s] - shift_u).exp_()
                if few:                                                     # [u t, u, w] as (k + 2, n)
                    shift_w = col_max[s].max().item()
                    rhs = torch.mul(ta[plo:phi_], u[:, None], out=reused(scratch["rhs"], phi_ - plo, k + 2))
                    rhs[:, k + 1] = torch.exp(col_max[s] - shift_w)
                    out = torch.mm(rhs.T, e[:, s].T, out=reused(products[part], k + 2, n) if one_block else None)
                    sums[i][part].add(out[: k + 1], shift_u)
                    sums[i][2].add(out[k + 1], shift_w)
                elif merged:                # W first, then e's entries scaled by +-u / W
                    sums[i][part].add(torch.mv(e[:, s], u), shift_u)
                    e[:, s].mul_(u).mul_(sums[i][part].value.reciprocal().mul_(2 * part - 1)[:, None])
                else:                   # [u t, u] would be as large as e: scale e's columns by u instead
                    sums[i][part].add(torch.mm(e[:, s].mul_(u), ta[plo:phi_, : k + 1]).T, shift_u)
            if one_block:
                diff = torch.mm(e, ta[:, :k], out=reused(scratch["products"], n, k)).T if merged else None
                with flush.paused():
                    yield finished(i, diff)
        del dist, diag

    for i in range(0 if one_block else len(temperatures)):                  # all blocks' sums are in
        with flush.paused():
            yield finished(i)


def _recompute_rows(rows, log_w, diff, tau, log_col, xa, ta, m, scale, self_mask, chunk):
    """The direct log-space formula with per-row shifts, for the rows the shared shifts served badly;
    writes them into ``log_w`` (n,) and ``diff`` (k, n)."""
    k, cols = ta.shape[1] - 2, ta.shape[0]
    targets = ta[:, :k]
    for i in range(0, len(rows), chunk):
        r = rows[i : i + chunk]
        dist = torch.mm(xa[r], ta.T).clamp_min_(0).sqrt_()                 # (len(r), cols)
        if self_mask:
            dist[torch.arange(len(r), device=dist.device), r] = math.inf
        logits = dist * (-1.0 / (scale * tau))
        log_a = logits - 0.5 * (torch.logsumexp(logits, dim=1, keepdim=True) + log_col)
        lw, df = dist.new_zeros(len(r)), dist.new_zeros(len(r), k)
        for sign, sl in ((-1.0, slice(0, m)), (1.0, slice(m, cols))):
            lw += torch.logsumexp(log_a[:, sl], dim=1)
            df.add_(torch.softmax(log_a[:, sl], dim=1) @ targets[sl], alpha=sign)
        log_w[r], diff[:, r] = lw, df.T


def _finish(neg: _ShiftedSum, pos: _ShiftedSum, row: _ShiftedSum, k: int, threshold: float, diff=None):
    """One temperature's -r + log W+ + log W- (n,) and (m+ - m-) transposed (k, n) (made in the positives'
    sum unless given, the parts' sums then W alone) from its shifted sums, and the rows below ``threshold``."""
    bad = ~(row.value >= threshold)
    log_w = row.value.log().add_(row.shift).neg_()                          # -r
    given = diff is not None
    for sign, part in ((1.0, pos), (-1.0, neg)):
        if part.value is None:                                              # no targets of this kind
            log_w -= math.inf
            continue
        total_w = part.value if given else part.value[k]
        bad |= ~(total_w >= threshold)
        log_w += total_w.log().add_(part.shift)
        if diff is None:
            diff = part.value[:k].div_(total_w if sign > 0 else -total_w)     # x / -w = -(x / w) exactly
        elif not given:
            diff.addcdiv_(part.value[:k], total_w, value=sign)
    return log_w, diff, bad


class _FlushDenormals:
    """Treat subnormal floats as zero on this CPU thread inside ``with`` (restored afterwards).

    Products far below the smallest normal float are dropped either way (their error is covered by
    the exact recomputation of rows with small sums), but subnormal arithmetic can run many times
    slower on the CPU.  ``paused()`` restores ordinary arithmetic while the caller weighs a temperature.
    """

    def __init__(self, device: torch.device):
        self.cpu, self.switched = device.type == "cpu", False

    def __enter__(self):
        probe = torch.tensor(2.0 ** -70, dtype=torch.float32)
        if self.cpu and bool(probe * probe != 0):                          # not flushing already
            self.switched = torch.set_flush_denormal(True)
        return self

    def __exit__(self, *exc):
        if self.switched:
            torch.set_flush_denormal(False)
        self.switched = False

    @contextmanager
    def paused(self):
        switched = self.switched
        if switched:
            torch.set_flush_denormal(False)
        try:
            yield
        finally:
            if switched and self.switched:
                torch.set_flush_denormal(True)


def drift_loss(u: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """Drifting loss ``mean |u - sg(u + V)|^2`` over movers u (n, k) and their field V (n, k).

    Its value is ``mean |V|^2``; its gradient moves each u along its V.
    """
    return (u - (u + field).detach()).pow(2).sum(dim=1).mean()
