"""Independent runs trained side by side in worker processes (``chartlib.runs.cache.cached_all``): each
run bit for bit the run trained alone, cached and noted as trained by the parent, a worker's error
raised in the parent with its message; a chapter's arms trained as one batch (``chartlib.runs.arms``)."""
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import asdict, replace

import pytest
import torch

from chartlib.book.build import PROGRESS_LINE  # the book's pages hide this log (build.tidy)
from chartlib.core.encoders import Gaussian
from chartlib.core.fields import CriticField
from chartlib.core.methods import ChartConfig, DriftConfig, FlowConfig, train_run
from chartlib.core.training import Schedule, TrainingDiverged
from chartlib.runs import cache, workers
from chartlib.runs.arms import Plan, train_arms
from tests.helpers import NaNData

SCHED = Schedule(steps=30, batch=32, width=16, depth=2, n_snapshots=4, n_show=20, n_eval=40)
# three methods, the critic's own optimiser and the fibers' noise included
CONFIGS = [DriftConfig(schedule=SCHED),
           ChartConfig(schedule=replace(SCHED, seed=1), encoder=Gaussian(),
                       field=CriticField(width=16, depth=1, steps=2)),
           FlowConfig(schedule=replace(SCHED, seed=2), euler_steps=5)]


@pytest.fixture(autouse=True)
def _fresh_ledger_and_pool(monkeypatch):
    monkeypatch.setattr(cache, "LEDGER", [])
    monkeypatch.delenv("CHARTLIB_RUN_LEDGER", raising=False)
    monkeypatch.delenv(workers.WORKERS_ENV, raising=False)
    yield
    workers.close_pool()


def _same(a, b):
    assert a.steps == b.steps and a.method == b.method
    assert a.frames.keys() == b.frames.keys() and a.final.keys() == b.final.keys()
    assert all(torch.equal(a.frames[k], b.frames[k]) for k in a.frames)
    assert all(torch.equal(a.final[k], b.final[k]) for k in a.final)
    assert a.history == b.history
    assert all(torch.equal(a.state[m][n], b.state[m][n]) for m in a.state for n in a.state[m])


def test_runs_in_workers_equal_the_runs_trained_alone(tmp_path, one_thread):
    side_by_side = cache.cached_all(CONFIGS, device="cpu", folder=tmp_path, workers=2)
    assert [e["event"] for e in cache.LEDGER] == ["trained"] * 3
    for cfg, run in zip(CONFIGS, side_by_side):
        _same(run, train_run(cfg, device="cpu"))
    again = cache.cached_all(CONFIGS, device="cpu", folder=tmp_path, workers=2)   # all from the cache now
    assert [e["event"] for e in cache.LEDGER[3:]] == ["loaded"] * 3 and all(r.cached for r in again)
    for a, b in zip(side_by_side, again):
        _same(a, b)


def test_one_worker_is_the_sequential_path(tmp_path, one_thread, monkeypatch):
    monkeypatch.setattr(workers, "worker_pool", lambda *a: pytest.fail("no pool with one worker"))
    runs = cache.cached_all(CONFIGS[:2], device="cpu", folder=tmp_path, workers=1)
    assert [e["event"] for e in cache.LEDGER] == ["trained"] * 2 and not any(r.cached for r in runs)


def test_one_missing_run_trains_here_whatever_the_worker_count(tmp_path, one_thread, monkeypatch):
    monkeypatch.setattr(workers, "worker_pool", lambda *a: pytest.fail("no pool for a single run"))
    cache.cached(CONFIGS[0], device="cpu", folder=tmp_path)
    runs = cache.cached_all(CONFIGS[:2], device="cpu", folder=tmp_path, workers=2)
    assert [e["event"] for e in cache.LEDGER] == ["trained", "trained", "loaded"] and runs[0].cached


def _steps(cfg, run) -> dict:
    return {"n": len(run.history["loss"])}


def test_train_arms_trains_only_the_missing_runs_in_workers(tmp_path, one_thread, monkeypatch, capsys):
    monkeypatch.setenv("CHARTLIB_CACHE_DIR", str(tmp_path))
    cfgs = [replace(CONFIGS[0], schedule=replace(SCHED, seed=i)) for i in range(3)]
    cache.cached(cfgs[1], device="cpu")                     # one seed is cached already
    arm = train_arms({"a": Plan("arm", cfgs, {"kind": "drift"})}, _steps, device="cpu", workers=2)["a"]
    assert [p["seed"] for p in arm.per_seed] == [0, 1, 2] and [r.cached for r in arm.runs] == [False, True, False]
    assert all(p["n"] == 30 and p["train_seconds"] == r.seconds for p, r in zip(arm.per_seed, arm.runs))
    assert arm.extra == {"kind": "drift"}                    # the plan's facts, kept with the arm
    assert sorted(e["event"] for e in cache.LEDGER) == ["loaded", "trained", "trained", "trained"]
    out = capsys.readouterr().out
    assert "training 2 runs in 2 worker processes" in out and "trained arm · seed 2: 30 steps in" in out
    assert all(PROGRESS_LINE.fullmatch(line) for line in out.splitlines()), out


def test_a_worker_error_is_raised_here_and_nothing_of_it_is_cached(tmp_path, one_thread):
    bad = replace(CONFIGS[0], schedule=replace(SCHED, seed=5))
    bad = ChartConfig(data=NaNData(), schedule=bad.schedule)
    with pytest.raises(TrainingDiverged, match="my arm · seed 5: loss became nan at step 0"):
        cache.cached_all([CONFIGS[0], bad], device="cpu", folder=tmp_path, workers=2,
                         labels=["my arm · seed 0", "my arm · seed 5"])
    assert not (tmp_path / f"{cache.run_key(bad)}.json").exists()
    assert all(e["key"] != cache.run_key(bad) for e in cache.LEDGER)


def test_train_arms_hands_each_arm_its_own_runs(tmp_path, one_thread, monkeypatch):
    monkeypatch.setenv("CHARTLIB_CACHE_DIR", str(tmp_path))
    scored = []

    def score(cfg, run):
        scored.append(cfg)
        return {"method": run.method}

    facts = {"kind": "flow"}
    plans = {"drift": Plan("drift arm", [CONFIGS[0], replace(CONFIGS[0], schedule=replace(SCHED, seed=3))]),
             "flow": Plan("flow arm", [CONFIGS[2]], facts),
             "chart": Plan("chart arm", [CONFIGS[1]])}
    arms = train_arms(plans, score, device="cpu", workers=2)   # four runs of three methods share two workers
    assert list(arms) == list(plans) and [e["event"] for e in cache.LEDGER] == ["trained"] * 4
    assert scored == [c for plan in plans.values() for c in plan.configs]      # each run scored once, with its config
    for key, plan in plans.items():
        arm = arms[key]
        assert arm.key == key and arm.label == plan.label and len(arm.runs) == len(plan.configs)
        assert [p["seed"] for p in arm.per_seed] == [c.schedule.seed for c in plan.configs]
        for cfg, run, scores in zip(plan.configs, arm.runs, arm.per_seed):
            assert run.config == asdict(cfg) and scores["method"] == run.method
        assert arm.extra == plan.facts and arm.extra is not plan.facts
    arms["flow"].extra["added"] = 1                           # an arm's extra is a copy: the plan keeps its facts
    assert facts == {"kind": "flow"}
    _same(arms["drift"].runs[1], train_run(plans["drift"].configs[1], device="cpu"))


def _kill_a_worker_once_training(after: float = 1.0, wait: float = 60.0):
    """In a thread: once the pool's workers exist, wait ``after`` seconds and kill one with SIGKILL."""
    def kill():
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not workers.worker_processes():
            time.sleep(0.05)
        time.sleep(after)
        procs = workers.worker_processes()
        if procs:
            os.kill(procs[0].pid, signal.SIGKILL)
    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_a_killed_worker_is_reported_with_the_unfinished_runs_within_seconds(tmp_path, one_thread):
    slow = [DriftConfig(schedule=replace(SCHED, steps=20_000, seed=s)) for s in (7, 8)]
    _kill_a_worker_once_training()
    start = time.monotonic()
    with pytest.raises(workers.RunLost, match=r"a worker process died .*slow · seed 7, slow · seed 8\. The 0 run"):
        cache.cached_all(slow, device="cpu", folder=tmp_path, workers=2, labels=["slow · seed 7", "slow · seed 8"])
    assert time.monotonic() - start < 30            # one 20,000-step run alone takes longer than that here
    assert not list(tmp_path.glob("*.json")) and workers.worker_processes() == []     # pool stopped
    assert not any(p.is_alive() for p in multiprocessing.active_children() if p.name.startswith("SpawnPoolWorker"))
