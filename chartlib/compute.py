"""CPU threading for the chapters: the same in a live kernel as under the book build.

OpenMP threads that spin while they wait make torch many times slower whenever anything else runs
on a small machine; waiting passively costs nothing measurable on an idle one.  The variable is read
once, when torch loads its OpenMP runtime, so ``chartlib/__init__.py`` sets it before anything
imports torch (the build sets it for its kernels too).
"""
from __future__ import annotations

import functools
import os

from .params import check_int

PASSIVE = "PASSIVE"


def passive_waiting() -> bool:
    """Whether OpenMP threads wait passively in this process."""
    return os.environ.get("OMP_WAIT_POLICY", "").upper() == PASSIVE


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
    return wrapped


def use_threads(threads: int | None) -> int:
    """Set torch's CPU thread count (None: leave it) and return the count in use."""
    import torch
    if threads is not None:
        check_int("threads", threads, 1, 1024)
        torch.set_num_threads(threads)
    return torch.get_num_threads()
