"""Benchmark 1: ``chartlib.drift.drift_field`` against the field written plainly in full matrices.

Each (movers n, dimension k) case runs in a fresh process (``python -m benchmarks.drift SPEC``),
which prints one JSON line per variant, so a variant that runs out of memory loses only itself.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import torch

from chartlib.data import seeded
from chartlib.drift import MAX_BLOCK_ELEMENTS, drift_field

from .common import median_time, memory_method, peak_growth, ratio, reset_peak_rss

TAU = 0.05            # one temperature, relative to the mean distance, as the MNIST chapter calls it
SCALE_FREE = True
GRID = {"full": ((256, 1024, 4096, 8192), (2, 12, 784)), "quick": ((64, 256), (2, 784))}
VARIANTS = ("ours", "ours_whole", "plain")
MEMORY_FLOOR = 1 << 20   # smaller peaks may be served from memory the allocator already holds: no ratio
ROOT = Path(__file__).resolve().parents[1]


def plain_field(x: torch.Tensor, y: torch.Tensor, tau: float = TAU, scale_free: bool = SCALE_FREE,
                softmax: bool = True) -> torch.Tensor:
    """The field in full (n, n + p) matrices: movers x (n, k), also the negatives (self-pairs masked),
    positives y (p, k) -> V (n, k), equal to ``drift_field(..., unit_rms=False)``.

    A = sqrt(row softmax * column softmax) of the logits -d / tau; W = row sums of A's negative /
    positive columns; V = W_neg * (A_pos @ y) - W_pos * (A_neg @ x).  ``softmax=False`` normalises
    exp(logits) by its own row and column sums instead (no shift by the maximum).
    """
    n = x.shape[0]
    dist = torch.cdist(x, torch.cat([x, y]))                             # (n, n + p)
    self_pairs = torch.eye(n, dist.shape[1], dtype=torch.bool, device=x.device)
    dist = dist.masked_fill(self_pairs, 0.0)
    if scale_free:
        dist = dist / (dist.sum() / (dist.numel() - n))
    logits = (-dist / tau).masked_fill(self_pairs, -math.inf)
    if softmax:
        a = (logits.softmax(dim=1) * logits.softmax(dim=0)).sqrt()
    else:
        k = logits.exp()
        a = (k / k.sum(dim=1, keepdim=True) * (k / k.sum(dim=0, keepdim=True))).sqrt()
    a_neg, a_pos = a[:, :n], a[:, n:]
    w_neg, w_pos = a_neg.sum(dim=1, keepdim=True), a_pos.sum(dim=1, keepdim=True)
    return w_neg * (a_pos @ y) - w_pos * (a_neg @ x)


def ours(x, y, blocks=MAX_BLOCK_ELEMENTS, tau=TAU, scale_free=SCALE_FREE):
    return drift_field(x, y, None, (tau,), scale_free, unit_rms=False, max_block_elements=blocks)


def call(variant: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if variant == "plain":
        return plain_field(x, y)
    return ours(x, y, None if variant == "ours_whole" else MAX_BLOCK_ELEMENTS)


def n_blocks(n: int) -> int:
    """Row blocks drift_field uses for n movers against n negatives + n positives."""
    return math.ceil(n / max(1, min(n, MAX_BLOCK_ELEMENTS // (2 * n))))


def inputs(n: int, dim: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Movers N(0, I) (n, dim) and positives N(0.5, I) (n, dim)."""
    g = seeded(n + dim)
    return torch.randn(n, dim, generator=g).to(device), (torch.randn(n, dim, generator=g) + 0.5).to(device)


def worker(spec: dict):
    """Time and measure the variants of one case in this (fresh) process, one JSON line each."""
    device = torch.device(spec["device"])
    x, y = inputs(spec["n"], spec["dim"], device)
    for variant in spec["variants"]:
        try:
            call(variant, x[:16], y[:16])                                  # threads, kernels: warm
            out, peak = peak_growth(lambda: call(variant, x, y), device)   # the first call: memory
            finite = bool(torch.isfinite(out).all())
            del out
            seconds, reps = median_time(lambda: call(variant, x, y), device, spec["repeats"], warmup=0)
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
    """plain vs ours (one block, and blocks of 2 rows) on small nearby clouds: 64 movers, 64 positives."""
    worst, field = 0.0, 0.0
    for dim in (2, 12):
        x, y = inputs(64, dim, "cpu")
        ref = plain_field(x, y)
        for blocks in (MAX_BLOCK_ELEMENTS, 2 * 128):
            worst = max(worst, float((ours(x, y, blocks) - ref).abs().max()))
        field = max(field, float(ref.abs().max()))
    return {"inputs": "64 movers N(0, I), 64 positives N(0.5, I), dims 2 and 12; ours in one block and in blocks of 2 rows",
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
    ns, dims = GRID["quick" if quick else "full"]
    one_process_per_variant = device.type == "cpu" and not reset_peak_rss()
    groups = [[v] for v in VARIANTS] if one_process_per_variant else [list(VARIANTS)]
    cases = []
    for n in ns:
        for dim in dims:
            res = {}
            for variants in groups:
                spec = {"n": n, "dim": dim, "device": str(device), "variants": variants, "repeats": repeats}
                res.update(_spawn(spec, 120 if quick else 1800))
            t = {v: res[v].get("seconds") for v in VARIANTS}
            m = {v: res[v].get("peak_bytes") for v in VARIANTS}
            m = {v: b if b is not None and b >= MEMORY_FLOOR else None for v, b in m.items()}
            cases.append({"n": n, "dim": dim, "blocks": n_blocks(n), **res, "ratios": {
                "time_plain_over_ours": ratio(t["plain"], t["ours"]),
                "memory_plain_over_ours": ratio(m["plain"], m["ours"]),
                "time_whole_over_ours": ratio(t["ours_whole"], t["ours"]),
                "memory_whole_over_ours": ratio(m["ours_whole"], m["ours"])}})
    return {"settings": {
        "temperature": TAU, "scale_free": SCALE_FREE, "unit_rms": False, "dtype": "float32",
        "movers": "n x dim, N(0, I)", "positives": "n x dim, N(0.5, I)", "negatives": "the movers, self-pairs masked",
        "ours": f"chartlib.drift.drift_field, max_block_elements={MAX_BLOCK_ELEMENTS}",
        "ours_whole": "the same with max_block_elements=None", "plain": "benchmarks.drift.plain_field",
        "seconds": f"median per call over up to {repeats} calls", "peak_bytes": memory_method(device),
        "memory_ratios": f"only where both peaks are >= {MEMORY_FLOOR} bytes, else null",
        "one_process_per": "variant" if one_process_per_variant else "case"},
        "check": agreement(), "underflow": underflow(), "cases": cases}


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))
