"""The executor setting (``chartlib.runs.executors``): its values and their errors, a scheduler address
that does not answer, and an interrupt while runs train in worker processes or on a local Dask
cluster, which must leave no worker process behind."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chartlib.core.methods import DriftConfig
from chartlib.runs import cache, executors, workers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_setting(monkeypatch):
    monkeypatch.delenv(executors.EXECUTOR_ENV, raising=False)
    yield
    executors.close_current()


def test_settings_parse_and_bad_ones_name_the_variable_and_the_choices():
    assert executors.parse("inline") == executors.Setting("inline")
    assert executors.parse(" dask-local ") == executors.Setting("dask-local")
    assert executors.parse("dask://10.0.0.7:8786") == executors.Setting("dask", "tcp://10.0.0.7:8786")
    assert executors.parse("tcp://head:8786") == executors.Setting("dask", "tcp://head:8786")
    for bad in ("spark", "dask://nohost", "dask://host:port", "dask://:8786", "dask://h:70000", "Inline"):
        with pytest.raises(ValueError, match=rf"CHARTLIB_EXECUTOR='{bad}' is not allowed: CHARTLIB_EXECUTOR must "
                                             r"be inline, processes, dask-local or dask://host:port"):
            executors.parse(bad)


def test_unset_means_processes_for_several_workers_and_inline_for_one(monkeypatch):
    assert isinstance(executors.make(None, 1, 1), executors.Inline)
    assert isinstance(executors.make(None, 2, 1), executors.Processes)
    assert isinstance(executors.make(executors.Setting("processes"), 1, 1), executors.Inline)
    monkeypatch.setenv(executors.EXECUTOR_ENV, "inline")
    assert isinstance(executors.current(4, 1), executors.Inline)
    monkeypatch.setenv(executors.EXECUTOR_ENV, "nonsense")
    with pytest.raises(ValueError, match="CHARTLIB_EXECUTOR='nonsense' is not allowed"):
        cache.cached_all([DriftConfig()], device="cpu", workers=2)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_fails_at_once_with_the_address_and_the_fix(tmp_path, monkeypatch):
    port = _closed_port()
    monkeypatch.setattr(executors, "CONNECT_SECONDS", 1.0)
    monkeypatch.setenv(executors.EXECUTOR_ENV, f"dask://127.0.0.1:{port}")
    monkeypatch.setattr(cache.methods, "train_run", lambda *a, **k: pytest.fail("nothing trains"))
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=rf"no Dask scheduler answered at tcp://127.0.0.1:{port} within 1 s "
                                              rf"\(CHARTLIB_EXECUTOR=dask://127.0.0.1:{port}\).*dask scheduler.*"
                                              r"CHARTLIB_EXECUTOR=processes"):
        cache.cached_all([DriftConfig()], device="cpu", folder=tmp_path)
    assert time.monotonic() - start < 15
    assert not list(tmp_path.glob("*.json"))


# an interrupt while a batch trains: the script prints its workers' process ids, then trains runs far
# longer than the test waits
CHILD = """
import sys
from dataclasses import replace
from chartlib.core.methods import DriftConfig
from chartlib.core.training import Schedule
from chartlib.runs import cache, executors, workers
import torch
torch.set_num_threads(1)
kind, folder = sys.argv[1], sys.argv[2]
if kind == "processes":
    ex = executors.Processes(2, 1)
    workers.worker_pool(2, 1)
else:
    ex = executors.local_cluster(2, 1)
print("pids", *ex.process_ids(), flush=True)
slow = [DriftConfig(schedule=Schedule(steps=50_000, batch=32, width=16, depth=2, seed=s)) for s in range(3)]
cache.cached_all(slow, device="cpu", folder=folder, workers=2, executor=ex)
"""


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.parametrize("kind", ["processes", "dask-local"])
def test_an_interrupt_stops_the_batch_and_leaves_no_worker_behind(tmp_path, kind):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CHARTLIB_PROGRESS": "line", "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(tmp_path)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("pids"), (line, proc.stderr.read() if proc.poll() is not None else "")
        pids = [int(p) for p in line.split()[1:]]
        assert len(pids) >= 2 and all(_alive(p) for p in pids)
        time.sleep(3)                                   # the runs are training now
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - start < 20
    assert proc.returncode != 0 and "KeyboardInterrupt" in err, err[-2000:]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not [p for p in pids if _alive(p)]
    assert not list(tmp_path.glob("*.json"))          # nothing had finished, nothing is cached
    assert workers.worker_processes() == []


def test_the_executor_is_kept_between_batches_until_closed(monkeypatch):
    made = []

    class Fake(executors.Executor):
        def close(self):
            self.closed = True

    monkeypatch.setattr(executors, "make", lambda *a: made.append(Fake()) or made[-1])
    monkeypatch.setenv(executors.EXECUTOR_ENV, "dask-local")
    first = executors.current(2, 1)
    assert executors.current(2, 1) is first and len(made) == 1
    first.abort()
    first.close()                                     # as an interrupt closes a local cluster
    assert executors.current(2, 1) is not first and len(made) == 2
    assert executors.current(3, 1) is made[2] and made[1].closed    # another worker count: a new one


def test_an_executor_put_in_use_trains_every_batch_until_use_none(tmp_path, monkeypatch, one_thread):
    from dataclasses import replace

    from chartlib.core.training import Schedule
    calls = []

    class Counting(executors.Inline):
        def collect(self, fn, arglists, lost_message):
            calls.append(len(arglists))
            return super().collect(fn, arglists, lost_message)

    monkeypatch.setenv(executors.EXECUTOR_ENV, "nonsense")        # not read while an executor is in use
    cfgs = [DriftConfig(schedule=Schedule(steps=5, batch=16, width=8, depth=1, n_snapshots=2, n_show=8, n_eval=8,
                                          seed=s)) for s in range(2)]
    try:
        assert isinstance(executors.use(Counting()), Counting)
        cache.cached_all(cfgs, device="cpu", folder=tmp_path, workers=2)
        cache.cached_all([replace(cfgs[0], schedule=replace(cfgs[0].schedule, seed=7))], device="cpu", folder=tmp_path)
        assert calls == [2, 1]
        assert isinstance(executors.use(object()), executors.Dask)    # anything else is taken for a Client
    finally:
        executors.use(None)
    assert executors.chosen_by_user() is None
