"""Benchmark 1: ``chartlib.core.drift.drift_field`` against the field written plainly in full matrices,
and against the formulation of the paper's released code (full matrices, row and column softmax).

Each (movers n, dimension k, temperatures) case runs in a fresh process
(``python -m benchmarks.drift SPEC``), which prints one JSON line per variant, so a variant that
runs out of memory loses only itself.
"""
from __future__ import annotations

import functools
import json
import math
import subprocess
import sys
from pathlib import Path

import torch

from chartlib.core.data import seeded
from chartlib.core.drift import drift_field
from chartlib.core.kernel_sums import MAX_BLOCK_ELEMENTS

from .common import median_time, memory_method, peak_growth, ratio, reset_peak_rss

TAU = 0.05            # one temperature, relative to the mean distance, as the MNIST chapter calls it
TAUS = (0.02, 0.05, 0.2)   # the three temperatures of the paper's released code
SCALE_FREE = True
GRID = {"full": ((256, 1024, 4096, 8192), (2, 12, 784), ((TAU,), TAUS)),
        "quick": ((64, 256), (2, 784), ((TAU,), TAUS))}
VARIANTS = ("ours", "ours_whole", "plain", "reference")
MEMORY_FLOOR = 1 << 20   # smaller peaks may be served from memory the allocator already holds: no ratio
ROOT = Path(__file__).resolve().parents[1]


def plain_field(x: torch.Tensor, y: torch.Tensor, tau: float | tuple = TAU, scale_free: bool = SCALE_FREE,
                softmax: bool = True) -> torch.Tensor:
    """The field in full (n, n + p) matrices: movers x (n, k), also the negatives (self-pairs masked),
    positives y (p, k) -> V (n, k), equal to ``drift_field(..., unit_rms=False)``.

    A = sqrt(row softmax * column softmax) of the logits -d / tau; W = row sums of A's negative /
    positive columns; V = W_neg * (A_pos @ y) - W_pos * (A_neg @ x).  ``softmax=False`` normalises
    exp(logits) by its own row and column sums instead (no shift by the maximum).  Several
    temperatures share the distances, and their fields are summed.
    """
    n = x.shape[0]
    dist = torch.cdist(x, torch.cat([x, y]))                             # (n, n + p)
    self_pairs = torch.eye(n, dist.shape[1], dtype=torch.bool, device=x.device)
    dist = dist.masked_fill(self_pairs, 0.0)
    if scale_free:
        dist = dist / (dist.sum() / (dist.numel() - n))
    total = 0
    for t in (tau,) if isinstance(tau, (int, float)) else tau:
        logits = (-dist / t).masked_fill(self_pairs, -math.inf)
        if softmax:
            a = (logits.softmax(dim=1) * logits.softmax(dim=0)).sqrt()
        else:
            k = logits.exp()
            a = (k / k.sum(dim=1, keepdim=True) * (k / k.sum(dim=0, keepdim=True))).sqrt()
        a_neg, a_pos = a[:, :n], a[:, n:]
        w_neg, w_pos = a_neg.sum(dim=1, keepdim=True), a_pos.sum(dim=1, keepdim=True)
        total = total + (w_neg * (a_pos @ y) - w_pos * (a_neg @ x))
    return total


def reference_field(x: torch.Tensor, y: torch.Tensor, taus: tuple = TAUS) -> torch.Tensor:
    """The formulation of the paper's released ``drift_loss`` (lambertae/drifting), for timing only.

    Written here in torch from its description, with the movers as the only negatives: distances
    from sqrt(max(squared distance, 1e-8)); divided by their mean over all entries; self-pairs
    pushed away by adding 100 instead of masked; per temperature, full (n, n + p) row and column
    softmaxes, A = sqrt(max(product, 1e-6)), force = (W_neg * A_pos) @ y - (W_pos * A_neg) @ x
    minus (their row sum) * x, scaled to unit root-mean-square over its entries; forces summed.
    Not the same numbers as ``drift_field`` (the clip, the +100 and the normalisation differ).
    """
    n = x.shape[0]
    targets = torch.cat([x, y])                                          # (n + p, k)
    sq = (x * x).sum(1, keepdim=True) + (targets * targets).sum(1) - 2 * x @ targets.T
    dist = sq.clamp(min=1e-8).sqrt()
    dist = dist / dist.mean().clamp(min=1e-3)
    dist = dist + 100.0 * torch.eye(n, dist.shape[1], dtype=dist.dtype, device=dist.device)
    total = torch.zeros_like(x)
    for t in taus:
        logits = -dist / t
        a = (logits.softmax(dim=1) * logits.softmax(dim=0)).clamp(min=1e-6).sqrt()
        a_neg, a_pos = a[:, :n], a[:, n:]
        coeff = torch.cat([-a_neg * a_pos.sum(1, keepdim=True), a_pos * a_neg.sum(1, keepdim=True)], dim=1)
        force = coeff @ targets - coeff.sum(1, keepdim=True) * x
        total = total + force / force.pow(2).mean().clamp(min=1e-8).sqrt()
    return total


def ours(x, y, blocks=MAX_BLOCK_ELEMENTS, tau=TAU, scale_free=SCALE_FREE):
    taus = (tau,) if isinstance(tau, (int, float)) else tuple(tau)
    return drift_field(x, y, None, taus, scale_free, unit_rms=False, max_block_elements=blocks)


def call(variant: str, x: torch.Tensor, y: torch.Tensor, taus: tuple = (TAU,)) -> torch.Tensor:
    if variant == "plain":
        return plain_field(x, y, taus)
    if variant == "reference":
        return reference_field(x, y, taus)
    return ours(x, y, None if variant == "ours_whole" else MAX_BLOCK_ELEMENTS, taus)


def n_blocks(n: int) -> int:
    """Blocks of target columns drift_field uses for n movers against n negatives + n positives."""
    return math.ceil(2 * n / max(1, min(2 * n, MAX_BLOCK_ELEMENTS // n)))


def inputs(n: int, dim: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Movers N(0, I) (n, dim) and positives N(0.5, I) (n, dim)."""
    g = seeded(n + dim)
    return torch.randn(n, dim, generator=g).to(device), (torch.randn(n, dim, generator=g) + 0.5).to(device)


def worker(spec: dict):
    """Time and measure the variants of one case in this (fresh) process, one JSON line each."""
    device = torch.device(spec["device"])
    if device.type == "cpu":
        torch.set_num_threads(1)           # the budget's setting: one thread, whatever the machine has
    x, y = inputs(spec["n"], spec["dim"], device)
    taus = tuple(spec.get("temperatures", (TAU,)))
    for variant in spec["variants"]:
        try:
            call(variant, x[:16], y[:16], taus)                                  # threads, kernels: warm
            whole = functools.partial(call, variant, x, y, taus)
            out, peak = peak_growth(whole, device)                              # the first call: memory
            finite = bool(torch.isfinite(out).all())
            del out
            seconds, reps = median_time(whole, device, spec["repeats"], warmup=0)
            res = {"seconds": seconds, "repeats": reps, "peak_bytes": peak, "finite": finite}
        except (RuntimeError, MemoryError) as e:                           # out of memory, on CPU or GPU
            res = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            if device.type == "cuda":
                torch.cuda.empty_cache()
        print(json.dumps({variant: res}), flush=True)


def _spawn(spec: dict, timeout: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.drift", json.dumps(spec)]
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        out, why = p.stdout, f"worker exited with code {p.returncode}: {p.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired as e:
        out, why = e.stdout or "", f"worker timed out after {timeout} s"
        out = out.decode() if isinstance(out, bytes) else out
    res = {}
    for line in out.splitlines():
        if line.startswith("{"):
            res.update(json.loads(line))
    return {v: res.get(v, {"error": why}) for v in spec["variants"]}


def agreement() -> dict:
    """plain vs ours (one block, and blocks of 4 target columns) on small nearby clouds: 64 movers, 64 positives."""
    worst, field = 0.0, 0.0
    for dim in (2, 12):
        x, y = inputs(64, dim, "cpu")
        ref = plain_field(x, y)
        for blocks in (MAX_BLOCK_ELEMENTS, 2 * 128):
            worst = max(worst, float((ours(x, y, blocks) - ref).abs().max()))
        field = max(field, float(ref.abs().max()))
    return {"inputs": "64 movers N(0, I), 64 positives N(0.5, I), dims 2 and 12; ours in one block and in blocks "
                      "of 4 target columns",
            "max_abs_diff": worst, "max_abs_field": field, "relative": worst / field}


def underflow(n: int = 256) -> dict:
    """Two clouds (spread 0.3) 4 and 6 units apart at absolute tau 0.05, as chapter 1 uses it:
    float32 fields against the plain formula in float64."""
    out = {}
    for sep in (4.0, 6.0):
        g = seeded(7)
        x = 0.3 * torch.randn(n, 2, generator=g)
        y = 0.3 * torch.randn(n, 2, generator=g) + torch.tensor([sep, 0.0])
        ref = plain_field(x.double(), y.double(), scale_free=False)
        fields = {"plain (softmax)": plain_field(x, y, scale_free=False),
                  "plain (exp / sums)": plain_field(x, y, scale_free=False, softmax=False),
                  "ours": ours(x, y, scale_free=False)}
        for name, v in fields.items():
            ok = bool(torch.isfinite(v).all())
            err = (v.double() - ref).norm(dim=1) / ref.norm(dim=1)
            out[f"{name}, {sep:g} apart"] = {"finite": ok, "zero_rows": float((v.abs().sum(1) == 0).float().mean()),
                                              "worst_row_relative_error": float(err.max()) if ok else None}
    return out


def run(device: torch.device, quick: bool, repeats: int) -> dict:
    ns, dims, temperature_sets = GRID["quick" if quick else "full"]
    one_process_per_variant = device.type == "cpu" and not reset_peak_rss()
    groups = [[v] for v in VARIANTS] if one_process_per_variant else [list(VARIANTS)]
    cases = []
    for n in ns:
        for dim in dims:
            for taus in temperature_sets:
                res = {}
                for variants in groups:
                    spec = {"n": n, "dim": dim, "temperatures": list(taus), "device": str(device),
                            "variants": variants, "repeats": repeats}
                    res.update(_spawn(spec, 120 if quick else 1800))
                t = {v: res[v].get("seconds") for v in VARIANTS}
                m = {v: res[v].get("peak_bytes") for v in VARIANTS}
                m = {v: b if b is not None and b >= MEMORY_FLOOR else None for v, b in m.items()}
                cases.append({"n": n, "dim": dim, "temperatures": list(taus), "blocks": n_blocks(n), **res, "ratios": {
                    "time_plain_over_ours": ratio(t["plain"], t["ours"]),
                    "memory_plain_over_ours": ratio(m["plain"], m["ours"]),
                    "time_reference_over_ours": ratio(t["reference"], t["ours"]),
                    "memory_reference_over_ours": ratio(m["reference"], m["ours"]),
                    "time_whole_over_ours": ratio(t["ours_whole"], t["ours"]),
                    "memory_whole_over_ours": ratio(m["ours_whole"], m["ours"])}})
    return {"settings": {
        "temperatures": [list(t) for t in temperature_sets], "scale_free": SCALE_FREE, "unit_rms": False,
        "dtype": "float32", "cpu_threads": 1,
        "movers": "n x dim, N(0, I)", "positives": "n x dim, N(0.5, I)", "negatives": "the movers, self-pairs masked",
        "ours": f"chartlib.core.drift.drift_field, max_block_elements={MAX_BLOCK_ELEMENTS}",
        "ours_whole": "the same with max_block_elements=None",
        "plain": "benchmarks.drift.plain_field (distances once, the temperatures' fields summed)",
        "reference": "benchmarks.drift.reference_field: the released drift_loss's formulation in torch "
                     "(not the same numbers: clip at 1e-6, self-pairs +100, unit-RMS force per temperature)",
        "seconds": f"median per call over up to {repeats} calls", "peak_bytes": memory_method(device),
        "memory_ratios": f"only where both peaks are >= {MEMORY_FLOOR} bytes, else null",
        "one_process_per": "variant" if one_process_per_variant else "case"},
        "check": agreement(), "underflow": underflow(), "cases": cases}


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))
