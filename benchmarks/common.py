"""Shared helpers: the machine's description, median timings, peak memory, the matmul rate, JSON."""
from __future__ import annotations

import json
import os
import resource
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from chartlib.common.paths import atomic_write, build_dir, json_safe


def out_dir() -> Path:
    """``_build/bench`` (or under ``$CHARTLIB_BUILD_DIR``)."""
    return build_dir() / "bench"


def sync(device: torch.device):
    """Wait for queued GPU work, so a timer measures the computation and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def median_time(fn, device: torch.device, repeats: int, warmup: int = 1, budget_s: float = 30.0) -> tuple[float, int]:
    """Median seconds of ``fn()`` over ``repeats`` timed calls after ``warmup`` untimed ones.

    Stops early (after at least 2 calls) once the timed calls add up to ``budget_s``.
    Returns (median seconds, calls timed).
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    while len(times) < repeats and (len(times) < 2 or sum(times) < budget_s):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(times)


def matmul_rate(size: int, device: torch.device, repeats: int) -> float:
    """Median float32 GFLOP/s of one (size, size) @ (size, size) product (2 size^3 flops)."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    seconds, _ = median_time(lambda: a @ b, device, repeats)
    return 2 * size ** 3 / seconds / 1e9


def _status(key: str) -> int | None:
    """A size from /proc/self/status (VmRSS, VmHWM) in bytes, or None where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_method(device: torch.device) -> str:
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated during the call minus memory_allocated just before"
    if device.type == "cpu" and _status("VmRSS") is not None:
        if reset_peak_rss():
            return ("peak RSS (VmHWM, reset through /proc/self/clear_refs just before) minus RSS just before the "
                    "first call in a fresh process per case, inputs already allocated, default glibc allocator "
                    "(forcing mmap for every block made the calls up to 1.5x slower, so it is not done)")
        return "resource.getrusage ru_maxrss after minus RSS just before the call, one fresh process per call"
    return "not measured on this device"


def peak_growth(fn, device: torch.device):
    """Call ``fn()``; return (its result, peak memory in bytes above what was in use before, or None)."""
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        out = fn()
        sync(device)
        return out, torch.cuda.max_memory_allocated(device) - before
    if device.type != "cpu" or _status("VmRSS") is None:
        return fn(), None
    reset = reset_peak_rss()
    before = _status("VmRSS")
    out = fn()
    peak = _status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out, max(0, peak - before)


def machine(device: torch.device) -> dict:
    """The build's machine description plus torch threads, device, OMP_WAIT_POLICY and the date."""
    from chartlib.book.timings import describe_machine

    return {**describe_machine(), "torch_threads": torch.get_num_threads(), "device": str(device),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def write(name: str, record: dict) -> Path:
    path = out_dir() / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(json_safe(record), indent=1).encode())
    return path


def ratio(a, b):
    """a / b, or None when either is missing or b is 0."""
    return a / b if a is not None and b else None
