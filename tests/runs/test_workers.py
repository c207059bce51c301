"""Torch's CPU threads for the chapters and the worker count's setting (``chartlib.runs.workers``)."""
import sys
import types

import pytest
import torch

from chartlib.core.methods import DriftConfig
from chartlib.runs import cache, workers


def test_toy_chapters_use_one_thread_and_restore_the_count():
    seen = []

    @workers.one_cpu_thread
    def chapter(fail):
        seen.append(torch.get_num_threads())
        if fail:
            raise RuntimeError("boom")

    before = torch.get_num_threads()
    chapter(False)
    with pytest.raises(RuntimeError):
        chapter(True)
    assert seen == [1, 1] and torch.get_num_threads() == before


def test_use_threads_sets_and_validates_the_count():
    before = torch.get_num_threads()
    try:
        assert workers.use_threads(None) == before
        assert workers.use_threads(1) == 1 == torch.get_num_threads()
        with pytest.raises(ValueError, match="threads=0 is not allowed"):
            workers.use_threads(0)
    finally:
        torch.set_num_threads(before)


def test_worker_count_setting(monkeypatch, one_thread):
    monkeypatch.delenv(workers.WORKERS_ENV, raising=False)
    assert workers.workers_rerun_main()                              # pytest's main is a module
    assert workers.default_workers("cpu") == 1                      # unset under a script: one after the other
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))     # as in a Jupyter kernel
    assert workers.default_workers("cpu") == min(workers.usable_cores(), workers.AUTO_CAP)   # unset: auto, capped
    monkeypatch.setenv(workers.WORKERS_ENV, "1")
    assert workers.default_workers("cpu") == 1                      # one run after the other
    monkeypatch.setenv(workers.WORKERS_ENV, "auto")
    assert workers.default_workers("cpu") == workers.usable_cores()  # one thread each
    assert workers.default_workers("cuda") == 1
    monkeypatch.setenv(workers.WORKERS_ENV, "3")
    assert workers.default_workers("cpu") == 3 and workers.default_workers("cuda") == 1
    for bad in ("two", "0"):
        monkeypatch.setenv(workers.WORKERS_ENV, bad)
        with pytest.raises(ValueError, match=f"CHARTLIB_WORKERS='?{bad}'? is not allowed"):
            workers.default_workers("cpu")
    with pytest.raises(ValueError, match="workers=0 is not allowed"):
        cache.cached_all([DriftConfig()], device="cpu", workers=0)
