"""CPU threading for the chapters: the same in a live kernel as under the book build.

OpenMP threads that spin while they wait make torch many times slower whenever anything else runs
on a small machine; waiting passively costs nothing measurable on an idle one.  The variable is read
once, when torch loads its OpenMP runtime, so ``chartlib/__init__.py`` sets it before anything
imports torch (the build sets it for its kernels too).
"""
from __future__ import annotations

import atexit
import functools
import os
import sys

from chartlib.common.checks import check_int

WORKERS_ENV = "CHARTLIB_WORKERS"


CHAPTER_END: list = []      # further closers run when a toy chapter ends (``chartlib.runs.executors`` adds its own)


def one_cpu_thread(chapter):
    """Run a toy chapter with one torch CPU thread, restoring the count after.

    Its networks are so small that a second thread costs more in synchronisation than it gains:
    on 2 cores a 500-step drift run took 2.3 s with one thread against 3.6 s with two, and a
    stochastic chart with its critic 10.7 s against 25 s.  Fixing the count also fixes the bits:
    with two threads the critic run's samples differed from the one-thread run's by up to 3e-6.
    """
    @functools.wraps(chapter)
    def wrapped(*args, **kwargs):
        import torch
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return chapter(*args, **kwargs)
        finally:
            torch.set_num_threads(before)
            for close in (close_pool, *CHAPTER_END):     # the chapter's workers (if it started any) end with it
                close()
    return wrapped


def use_threads(threads: int | None) -> int:
    """Set torch's CPU thread count (None: leave it) and return the count in use."""
    import torch
    if threads is not None:
        check_int("threads", threads, 1, 1024)
        torch.set_num_threads(threads)
    return torch.get_num_threads()


# ---------------------------------------------------------------------------------------------
# independent runs in worker processes

def usable_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


AUTO_CAP = 8           # unset: at most this many workers (each its own torch: 0.7 GB resident after a toy run here)


def default_workers(device=None) -> int:
    """How many runs train at once: ``$CHARTLIB_WORKERS`` (a number, or ``auto``: the usable cores
    divided by torch's thread count in this process, since each worker uses as many threads as this
    process so that a run's bits do not depend on where it trained); when unset, ``auto`` capped at
    ``AUTO_CAP`` in a notebook's kernel (and wherever the main module is not a file), 1 under a script
    or ``python -m`` (a spawned worker re-runs a script's top level, so a script asks for workers
    itself, its main code guarded by ``if __name__ == "__main__"``); always 1 off the CPU.

    The toy chapters train on one thread, so without workers they leave every other core idle.  With
    a chapter's runs handed over as one batch (``chartlib.runs.arms.train_arms``), two workers made the ci
    chapters 1-4 1.33x faster even while another job held one of this machine's two cores (104.5 s
    against 78.6 s, every metric bit-identical); ``CHARTLIB_WORKERS=1`` trains one run after another.
    """
    import torch
    if device is not None and torch.device(device).type != "cpu":
        return 1
    env = os.environ.get(WORKERS_ENV, "").strip()
    auto = max(1, usable_cores() // torch.get_num_threads())
    if env.lower() == "auto":
        return auto
    if not env:
        return 1 if workers_rerun_main() else min(auto, AUTO_CAP)
    try:
        value = int(env)
    except ValueError:
        raise ValueError(f"{WORKERS_ENV}={env!r} is not allowed: {WORKERS_ENV} must be an integer between 1 and "
                         f"256, or auto (one worker per usable core)") from None
    return check_int(WORKERS_ENV, value, 1, 256)


def workers_rerun_main() -> bool:
    """Whether a spawned worker would run this process's main module again: a script or a module run
    with ``python -m`` (not a Jupyter kernel, whose main module is no file)."""
    main = sys.modules.get("__main__")
    return getattr(main, "__file__", None) is not None or getattr(main, "__spec__", None) is not None


_POOL = None          # (pool, workers, threads, the worker processes it started with)


class RunLost(RuntimeError):
    """A worker process died (killed, or out of memory) while runs were still training in the pool."""


def _init_worker(threads: int):
    import signal
    # an interrupt (Ctrl-C, a kernel's interrupt or shutdown, sent to the whole process group) is the
    # parent's to handle: it stops the pool (``close_pool``)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["CHARTLIB_PROGRESS"] = "line"     # no progress bars from the workers; the parent reports
    import torch
    torch.set_num_threads(threads)


def worker_pool(workers: int, threads: int):
    """A pool of ``workers`` processes with ``threads`` torch threads each, started with "spawn" (torch
    and fork do not mix; spawn also works under Jupyter kernels), kept for the next call (the import of
    torch in every worker costs about a second) until ``close_pool`` or the end of the chapter."""
    global _POOL
    check_int("workers", workers, 1, 256)
    if _POOL is not None and _POOL[1:3] == (workers, threads) and not lost_workers():
        return _POOL[0]
    close_pool()
    import multiprocessing
    before = {p.pid for p in multiprocessing.active_children()}
    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(threads,))
    started = [p for p in multiprocessing.active_children() if p.pid not in before]
    _POOL = (pool, workers, threads, started)
    return pool


def worker_processes() -> list:
    """The processes the current pool started with (``multiprocessing.Process``; empty without a pool)."""
    return [] if _POOL is None else list(_POOL[3])


def lost_workers() -> list[int]:
    """Process ids of the pool's workers that have died.  The pool's workers never exit on their own, and
    the pool quietly replaces a dead one, so the task it was running would never report back."""
    return [p.pid for p in worker_processes() if not p.is_alive()]


def close_pool():
    """Stop the worker processes, if any (a run still training in one is abandoned)."""
    global _POOL
    if _POOL is not None:
        pool, _POOL = _POOL[0], None
        pool.terminate()
        pool.join()


atexit.register(close_pool)
