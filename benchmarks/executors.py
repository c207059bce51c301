"""Benchmark 7: where the runs missing from the cache train (``chartlib.runs.executors``): in this
process, in the worker pool, on a Dask ``LocalCluster``.

For each executor: its start-up (until every worker has answered a job that imports torch, less that
job's own pause), a batch of toy runs (chapter 1's ci generator, one seed each, trained through the run
cache into an empty folder, one torch thread per run as the toy chapters train) as runs per minute,
the peak resident memory of each worker process (``VmHWM``; in-process: this whole process's peak),
the time to close it, and whether every run equals the run trained in this process bit for bit.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from chartlib.chapters.mode_collapse import PROFILES as MODE_COLLAPSE_PROFILES
from chartlib.runs import cache, executors, workers

PAUSE = 0.5          # each start-up job waits this long, so that every worker takes one


def _ready() -> int:
    import os

    import torch  # noqa: F401  (what a worker pays before its first run)
    time.sleep(PAUSE)
    return os.getpid()


def _batch(quick: bool) -> list:
    cfg = MODE_COLLAPSE_PROFILES["ci"].arms()["small_tau"].configs[0]
    runs, steps = (4, 50) if quick else (16, cfg.schedule.steps)
    return [replace(cfg, schedule=replace(cfg.schedule, seed=s, steps=steps)) for s in range(runs)]


def _peak_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _equal(a, b) -> bool:
    return (a.history == b.history and all(torch.equal(a.final[k], b.final[k]) for k in a.final)
            and all(torch.equal(a.frames[k], b.frames[k]) for k in a.frames))


def _case(kind: str, n_workers: int, cfgs: list, reference: list | None) -> dict:
    start = time.perf_counter()
    ex = executors.make(executors.Setting(kind), n_workers, torch.get_num_threads())
    jobs = 1 if ex.in_process else n_workers
    list(ex.collect(_ready, [()] * jobs, lambda lost: "a worker died while starting"))
    startup = time.perf_counter() - start - PAUSE
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        runs = cache.cached_all(cfgs, device="cpu", folder=Path(folder), executor=ex)
        batch = time.perf_counter() - start
    pids = ex.process_ids()
    peaks = [_peak_kb(p) for p in (pids or [os.getpid()])]
    start = time.perf_counter()
    ex.close()
    closing = time.perf_counter() - start
    same = None if reference is None else all(_equal(a, b) for a, b in zip(runs, reference))
    return {"executor": kind, "workers": 1 if ex.in_process else n_workers, "startup_seconds": startup,
            "runs": len(cfgs), "steps": cfgs[0].schedule.steps, "batch_seconds": batch,
            "runs_per_minute": 60 * len(cfgs) / batch, "close_seconds": closing,
            "peak_mb_per_worker": [None if p is None else p / 1024 for p in peaks],
            "identical_to_inline": same}, runs


def run_executors(device, quick, repeats) -> dict:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfgs = _batch(quick)
        n_workers = min(2, workers.usable_cores()) if quick else max(2, workers.usable_cores())
        cases, reference = [], None
        for kind in ("inline", "processes", "dask-local"):
            case, runs = _case(kind, n_workers, cfgs, reference)
            reference = runs if reference is None else reference
            cases.append(case)
    finally:
        torch.set_num_threads(before)
    return {"settings": {"runs": "chapter 1's ci generator (small_tau arm), one seed per run",
                         "torch_threads_per_run": 1, "workers": n_workers,
                         "memory": "VmHWM of each worker process; inline: the benchmark process's own peak"},
            "cases": cases}
