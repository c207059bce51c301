"""A claim per cache key (``chartlib.runs.claims``): two processes on one cache folder train each run
once, the second waiting for the first's result; a claim dies with the process that held it."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from chartlib.core.methods import DriftConfig, train_run
from chartlib.runs import cache, claims
from tests.runs.test_parallel import SCHED

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_ledger(monkeypatch):
    monkeypatch.setattr(cache, "LEDGER", [])
    monkeypatch.delenv("CHARTLIB_RUN_LEDGER", raising=False)
    monkeypatch.delenv("CHARTLIB_EXECUTOR", raising=False)


def test_a_claim_is_exclusive_until_released(tmp_path):
    first = claims.try_claim(tmp_path, "k")
    assert first is not None and claims.try_claim(tmp_path, "k") is None
    assert claims.try_claim(tmp_path, "other") is not None               # one claim per key
    assert claims.wait_claim(tmp_path, "k", timeout=0.3) is None
    first.release()
    assert claims.try_claim(tmp_path, "k") is not None


def test_a_killed_holder_leaves_no_claim_behind(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from chartlib.runs import claims; "
         "c = claims.try_claim(Path(sys.argv[1]), 'k'); print(c is not None, flush=True); time.sleep(60)",
         str(tmp_path)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        assert claims.try_claim(tmp_path, "k") is None
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        assert claims.wait_claim(tmp_path, "k", timeout=5) is not None
    finally:
        holder.kill()
        holder.wait()


def test_a_run_claimed_elsewhere_is_waited_for_and_loaded(tmp_path, one_thread, monkeypatch, capsys):
    cfg = DriftConfig(schedule=SCHED)
    key = cache.run_key(cfg)
    trained = train_run(cfg, device="cpu")
    other = claims.try_claim(tmp_path, key)          # as another process that is training it

    def finish():
        time.sleep(1.0)
        cache.save(trained, key, tmp_path, cfg)
        other.release()
    threading.Thread(target=finish, daemon=True).start()
    monkeypatch.setattr(cache.methods, "train_run", lambda *a, **k: pytest.fail("trained twice"))
    run, = cache.cached_all([cfg], device="cpu", folder=tmp_path, labels=["my arm · seed 0"], workers=1)
    assert run.cached and torch.equal(run.final["samples"], trained.final["samples"])
    assert [e["event"] for e in cache.LEDGER] == ["loaded"]
    assert "waiting for my arm · seed 0: another process is training it" in capsys.readouterr().out


# one batch of runs, started by two processes at once on one cache folder
BATCH = """
import json, sys, time
from dataclasses import replace
from pathlib import Path
import torch
from chartlib.core.methods import DriftConfig
from chartlib.runs import cache
from tests.runs.test_claims import batch
torch.set_num_threads(1)
folder, go, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
out.with_suffix(".ready").touch()
while not go.exists():
    time.sleep(0.01)
start = time.time()
runs = cache.cached_all(batch(), device="cpu", folder=folder, workers=1)
torch.save({"start": start, "end": time.time(), "samples": [r.final["samples"] for r in runs]}, out)
"""


def batch() -> list:
    return [DriftConfig(schedule=replace(SCHED, steps=300, seed=s)) for s in range(4)]


def test_two_processes_on_one_cache_folder_train_each_run_once(tmp_path):
    folder, go = tmp_path / "cache", tmp_path / "go"
    procs = []
    for name in ("a", "b"):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CHARTLIB_PROGRESS": "line",
               "CHARTLIB_RUN_LEDGER": str(tmp_path / f"{name}.jsonl")}
        env.pop("CHARTLIB_EXECUTOR", None)
        procs.append(subprocess.Popen([sys.executable, "-c", BATCH, str(folder), str(go), str(tmp_path / f"{name}.pt")],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"{n}.ready").exists() for n in "ab") and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()                                          # both start together
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    events = {n: [json.loads(line) for line in (tmp_path / f"{n}.jsonl").read_text().splitlines()] for n in "ab"}
    trained = [e["key"] for n in "ab" for e in events[n] if e["event"] == "trained"]
    keys = [cache.run_key(c) for c in batch()]
    assert sorted(trained) == sorted(keys)              # every run trained once, by one of the two
    for n in "ab":
        assert sorted(e["key"] for e in events[n]) == sorted(keys)       # and handed to both
    a, b = (torch.load(tmp_path / f"{n}.pt") for n in "ab")
    assert a["start"] < b["end"] and b["start"] < a["end"]               # the two really ran at once
    assert all(torch.equal(x, y) for x, y in zip(a["samples"], b["samples"]))
