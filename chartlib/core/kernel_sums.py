"""The drifting field's per-mover sums, taken over the targets in column blocks and kept in log space
(the method is described in ``chartlib.core.drift``'s docstring): ``log_weights_and_differences``
yields, per temperature, log(W+ * W-) and m+ - m-; rows whose sums come out too small for full float
precision are recomputed exactly (``recompute_rows``)."""
from __future__ import annotations

import math

import torch

from .denormals import FlushDenormals

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


class ShiftedSum:
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


def log_weights_and_differences(x, positives, negatives, temperatures, scale_free, self_mask, max_block_elements,
                                flush: FlushDenormals):
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
    def exp_floored(t: torch.Tensor) -> torch.Tensor:
        return t.clamp_min_(floor).exp_()

    def exp_base2(t: torch.Tensor) -> torch.Tensor:
        return t.mul_(1.0 / math.log(2.0)).exp2_()

    exp_ = exp_floored if few else exp_base2

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
        # movers against movers are symmetric: rows r..t against columns r.., the rest mirrored (a third
        # less time at n = 4096)
        out = torch.empty(n, hi, **new) if out is None else out
        for r in range(0, n, 64):
            t = min(r + 64, n)
            torch.mm(xa[r:t], ta[r:hi].T, out=out[r:t, r:])
            out[r:t, :r] = out[:r, r:t].T
        return out.clamp_min_(0).sqrt_()

    def own(block: torch.Tensor, lo: int, hi: int) -> torch.Tensor | None:
        """The entries of a (n, hi - lo) block that pair a mover with itself, as a view."""
        top = min(hi, m)
        return block[lo:top, : top - lo].diagonal() if self_mask and lo < m else None

    def reused(flat: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
        return flat[: rows * columns].view(rows, columns)

    kept: dict[int, torch.Tensor] = {}
    spare_needed = not scale_free or len(starts) > KEPT_BLOCKS        # a buffer for the blocks not kept
    spare = torch.empty(n * width, **new) if spare_needed else None
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

    sums = [(ShiftedSum(), ShiftedSum(), ShiftedSum()) for _ in temperatures]   # neg, pos, exp(r)
    log_cols = [torch.empty(cols, **new) for _ in temperatures]
    ones = torch.ones(n, **new)
    products = scratch["products"].chunk(2) if one_block else None
    threshold = _EXACT_BELOW * cols * info.tiny / info.eps             # below: recompute the row exactly

    def pass_rows(rows: torch.Tensor, block: torch.Tensor | None) -> torch.Tensor:
        """The (len(rows), cols) distances of the given movers exactly as the pass computed them: the
        column sums in ``log_cols`` were made from these bits, and a far mover dominates its nearest
        targets' columns, so its recomputed logits must round as they did (a product of other shape
        rounds differently on some CPUs, and the mismatch, divided by a small temperature, left 2e-4
        relative error in a far mover's field)."""
        if block is not None:                                               # the one block, still alive
            return block[rows]
        out = torch.empty(len(rows), cols, **new)
        for lo in starts:
            hi = min(lo + width, cols)
            out[:, lo:hi] = distances(lo, hi, reused(spare, n, hi - lo) if spare is not None else None)[rows]
        return out

    def finished(i: int, diff: torch.Tensor | None = None, block: torch.Tensor | None = None):
        """Temperature i's (log weight, diff), its badly served rows recomputed exactly."""
        log_w, diff, bad = finish(*sums[i], k, threshold, diff)
        rows = bad.nonzero().flatten()
        chunk = max(1, budget // cols)
        for c in range(0, len(rows), chunk):
            r = rows[c : c + chunk]
            recompute_rows(r, pass_rows(r, block), log_w, diff, temperatures[i], log_cols[i], ta[:, :k], m,
                           scale, self_mask)
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
                    yield finished(i, diff, dist)
        del dist, diag

    for i in range(0 if one_block else len(temperatures)):                  # all blocks' sums are in
        with flush.paused():
            yield finished(i)


def recompute_rows(r, dist, log_w, diff, tau, log_col, targets, m, scale, self_mask):
    """The direct log-space formula with per-row shifts for the rows ``r`` (len(r),) the shared shifts
    served badly, from their distances ``dist`` (len(r), cols) to the targets (cols, k); writes them into
    ``log_w`` (n,) and ``diff`` (k, n)."""
    k, cols = targets.shape[1], targets.shape[0]
    if self_mask:
        dist = dist.clone()
        dist[torch.arange(len(r), device=dist.device), r] = math.inf
    logits = dist * (-1.0 / (scale * tau))
    log_a = logits - 0.5 * (torch.logsumexp(logits, dim=1, keepdim=True) + log_col)
    lw, df = dist.new_zeros(len(r)), dist.new_zeros(len(r), k)
    for sign, sl in ((-1.0, slice(0, m)), (1.0, slice(m, cols))):
        lw += torch.logsumexp(log_a[:, sl], dim=1)
        df.add_(torch.softmax(log_a[:, sl], dim=1) @ targets[sl], alpha=sign)
    log_w[r], diff[:, r] = lw, df.T


def finish(neg: ShiftedSum, pos: ShiftedSum, row: ShiftedSum, k: int, threshold: float, diff=None):
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
