"""Runs trained on a real Dask cluster (a ``LocalCluster`` of 2 worker processes with 1 thread each, on
loopback): bit for bit the runs trained in this process, cached by this process alone, a diverging
run's own error, and a worker killed mid-run (the scheduler retries the run elsewhere; when it may not,
the lost run is named)."""
import os
import signal
import threading
import time
from dataclasses import replace

import pytest

from chartlib.core.methods import ChartConfig, DriftConfig, train_run
from chartlib.core.training import TrainingDiverged
from chartlib.runs import cache, executors, workers
from tests.helpers import NaNData
from tests.runs.test_parallel import CONFIGS, SCHED, _same

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as c, distributed.Client(c) as client:
        yield client


@pytest.fixture(autouse=True)
def _fresh_ledger(monkeypatch):
    monkeypatch.setattr(cache, "LEDGER", [])
    monkeypatch.delenv("CHARTLIB_RUN_LEDGER", raising=False)


def test_runs_on_the_cluster_equal_the_runs_trained_here(tmp_path, one_thread, cluster):
    runs = cache.cached_all(CONFIGS, device="cpu", folder=tmp_path, executor=executors.Dask(cluster))
    assert [e["event"] for e in cache.LEDGER] == ["trained"] * 3
    for cfg, run in zip(CONFIGS, runs):
        _same(run, train_run(cfg, device="cpu"))
    assert len(list(tmp_path.glob("*.json"))) == 3            # this process wrote the cache
    assert all(r.cached for r in cache.cached_all(CONFIGS, device="cpu", folder=tmp_path,
                                                  executor=executors.Dask(cluster)))


def test_a_diverging_run_raises_its_own_error_from_the_cluster(tmp_path, one_thread, cluster):
    bad = ChartConfig(data=NaNData(), schedule=replace(SCHED, seed=5))
    with pytest.raises(TrainingDiverged, match="my arm · seed 5: loss became nan at step 0"):
        cache.cached_all([CONFIGS[0], bad], device="cpu", folder=tmp_path, executor=executors.Dask(cluster),
                         labels=["my arm · seed 0", "my arm · seed 5"])
    assert not (tmp_path / f"{cache.run_key(bad)}.json").exists()
    assert all(e["key"] != cache.run_key(bad) for e in cache.LEDGER)


def _kill_the_worker_training(client, after: float = 0.3):
    """In a thread: once a task is being processed, wait ``after`` seconds and SIGKILL its worker;
    ``killed`` receives the time of the kill."""
    killed = []

    def kill():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [addr for addr, keys in client.processing().items() if keys]
            if busy:
                time.sleep(after)
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(time.monotonic())
                return
            time.sleep(0.05)
    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread, killed


# a run of a few seconds here, long enough to be killed in the middle
SLOW = DriftConfig(schedule=replace(SCHED, steps=2000, seed=9))


def test_a_worker_killed_mid_run_is_retried_and_the_run_is_still_right(tmp_path, one_thread, cluster):
    thread, killed = _kill_the_worker_training(cluster)
    start = time.monotonic()
    run, = cache.cached_all([SLOW], device="cpu", folder=tmp_path, executor=executors.Dask(cluster))
    took = time.monotonic() - start
    thread.join(5)
    assert killed and killed[0] < start + took, "no worker was killed while the run trained"
    _same(run, train_run(SLOW, device="cpu"))
    assert took < 4 * run.seconds + 30                         # retried once, no hang


def _allow_failures(dask_scheduler, n: int) -> int:
    before, dask_scheduler.allowed_failures = dask_scheduler.allowed_failures, n
    return before


def test_a_worker_killed_with_no_retry_left_names_the_lost_run(tmp_path, one_thread, cluster):
    before = cluster.run_on_scheduler(_allow_failures, n=0)
    try:
        _kill_the_worker_training(cluster)
        start = time.monotonic()
        with pytest.raises(workers.RunLost, match=r"a worker process died .*slow one\. The 0 run\(s\).*\(dask;"):
            cache.cached_all([replace(SLOW, schedule=replace(SLOW.schedule, seed=10))], device="cpu", folder=tmp_path,
                             executor=executors.Dask(cluster), labels=["slow one"])
        assert time.monotonic() - start < 30
    finally:
        cluster.run_on_scheduler(_allow_failures, n=before)
    assert not list(tmp_path.glob("*.json"))
