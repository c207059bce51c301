"""The run cache: hits, misses, damaged entries that must be retrained (never used), an unwritable
folder, a disk that fills up, leftovers of a killed writer, and the ledger of what every call trained
or loaded (read by the book build: its reading is tested in tests/book/test_timings.py; the code
version in tests/runs/test_code_version.py)."""
import errno
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, replace

import pytest
import torch

from chartlib.common import paths
from chartlib.core.encoders import Gaussian
from chartlib.core.fields import CriticField, KernelField
from chartlib.core.methods import ChartConfig, DriftConfig, FlowConfig
from chartlib.core.training import Schedule, TrainingDiverged
from chartlib.runs import cache, claims
from tests.helpers import NaNData

SCHED = Schedule(steps=8, batch=32, width=16, depth=1, n_snapshots=3, n_show=20, n_eval=40)
CFG = ChartConfig(schedule=SCHED)


@pytest.fixture(autouse=True)
def _fresh_ledger(monkeypatch):
    """Each test sees its own in-process ledger and no ledger file unless it sets one."""
    monkeypatch.setattr(cache, "LEDGER", [])
    monkeypatch.setattr(cache, "_SWEPT", set())
    monkeypatch.setattr(cache, "_SAVE_WARNED", set())
    monkeypatch.delenv("CHARTLIB_RUN_LEDGER", raising=False)


def test_miss_then_hit(tmp_path):
    first = cache.cached(CFG, device="cpu", folder=tmp_path)
    assert not first.cached
    key = cache.run_key(CFG)
    assert (tmp_path / f"{key}.pt").exists() and (tmp_path / f"{key}.json").exists()
    second = cache.cached(CFG, device="cpu", folder=tmp_path)
    assert second.cached
    assert torch.equal(first.final["samples"], second.final["samples"])
    assert second.history == first.history and second.steps == first.steps
    assert second.state.keys() == first.state.keys()
    assert all(torch.equal(first.state["decoder"][k], v) for k, v in second.state["decoder"].items())


def test_keys_start_with_the_method():
    assert cache.run_key(DriftConfig(schedule=SCHED)).startswith("drift-")
    assert cache.run_key(CFG).startswith("chart-")
    assert cache.run_key(ChartConfig(schedule=SCHED, encoder=Gaussian(), field=CriticField())).startswith("chart-")
    assert cache.run_key(FlowConfig(schedule=SCHED)).startswith("flow-")
    with pytest.raises(TypeError, match="no training method for object"):
        cache.run_key(object())


def test_every_field_and_the_code_version_change_the_key(monkeypatch):
    keys = {cache.run_key(CFG), cache.run_key(replace(CFG, drift_weight=2.0)),
            cache.run_key(replace(CFG, schedule=replace(CFG.schedule, seed=1))),
            cache.run_key(replace(CFG, field=KernelField((0.1,)))),
            cache.run_key(replace(CFG, encoder=Gaussian())),
            cache.run_key(replace(CFG, encoder=Gaussian(-2.0))),
            cache.run_key(replace(CFG, field=CriticField())),
            cache.run_key(replace(CFG, field=CriticField(steps=1)))}
    assert len(keys) == 8
    monkeypatch.setattr(cache, "code_version", lambda: "edited")
    assert cache.run_key(CFG) not in keys


@dataclass(frozen=True)
class OtherKernel(KernelField):
    """Same settings as KernelField, another kind: must not share its cache entries."""


def test_the_kind_of_field_is_part_of_the_key():
    a, b = replace(CFG, field=KernelField()), replace(CFG, field=OtherKernel())
    assert asdict(a) == asdict(b)                      # indistinguishable by their settings alone
    assert cache.run_key(a) != cache.run_key(b)


@pytest.mark.parametrize("damage", ["truncate", "flip", "bad_json", "other_config", "other_kind", "missing_payload"])
def test_damaged_entries_are_retrained(tmp_path, damage):
    original = cache.cached(CFG, device="cpu", folder=tmp_path)
    key = cache.run_key(CFG)
    pt, meta = tmp_path / f"{key}.pt", tmp_path / f"{key}.json"
    if damage == "truncate":
        pt.write_bytes(pt.read_bytes()[:100])
    elif damage == "flip":
        data = bytearray(pt.read_bytes())
        data[len(data) // 2] ^= 0xFF
        pt.write_bytes(bytes(data))
    elif damage == "bad_json":
        meta.write_text("{not json")
    elif damage == "other_config":
        m = json.loads(meta.read_text())
        m["config"]["drift_weight"] = 99.0
        meta.write_text(json.dumps(m))
    elif damage == "other_kind":
        m = json.loads(meta.read_text())
        assert m["config"]["field"]["kind"] == "KernelField"
        m["config"]["field"]["kind"] = "OtherKernel"
        meta.write_text(json.dumps(m))
    else:
        pt.unlink()
    with pytest.warns(UserWarning, match="ignored and retrained") as caught:
        again = cache.cached(CFG, device="cpu", folder=tmp_path)
    assert len([w for w in caught if "ignored and retrained" in str(w.message)]) == 1     # reported once
    assert not again.cached
    assert torch.equal(again.final["samples"], original.final["samples"])   # deterministic retrain
    assert cache.cached(CFG, device="cpu", folder=tmp_path).cached            # and the entry is whole again


def test_a_failed_run_leaves_no_entry(tmp_path):
    with pytest.raises(TrainingDiverged, match="my arm · seed 0: loss became nan at step 0"):
        cache.cached(replace(CFG, data=NaNData()), device="cpu", folder=tmp_path, label="my arm · seed 0")
    assert [p.name for p in tmp_path.iterdir()] == [claims.FOLDER]      # its released claim's empty lock file
    assert cache.LEDGER == []                          # a failed run is not noted either


# ---------------------------------------------------------------------------------------------
# an unwritable cache folder

def test_writable_says_why_not(tmp_path):
    assert cache.writable(tmp_path / "new" / "folder") is None and (tmp_path / "new" / "folder").is_dir()
    assert list((tmp_path / "new" / "folder").iterdir()) == []        # the probe file is gone
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    problem = cache.writable(blocker / "cache")
    assert problem and str(blocker / "cache") in problem


def test_an_unwritable_folder_trains_without_caching(tmp_path):
    # tests may run as root, whom chmod does not stop: a folder below a regular file cannot exist for anyone
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    folder = blocker / "cache"
    with pytest.warns(UserWarning, match=r"the run cache cannot be written: .*Training chart-\w+ without caching"):
        run = cache.cached(CFG, device="cpu", folder=folder)
    assert not run.cached and run.final["samples"].shape == (40, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["a_file"] and blocker.read_text() == "not a folder"
    assert [e["event"] for e in cache.LEDGER] == ["trained"]
    with pytest.warns(UserWarning, match="cannot be written"):
        assert not cache.cached(CFG, device="cpu", folder=folder).cached   # nothing to load: trained again


def test_a_folder_the_probe_cannot_write_to_is_left_empty(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "writable", lambda folder: f"Read-only file system ({folder})")
    with pytest.warns(UserWarning, match=r"Read-only file system"):
        run = cache.cached(CFG, device="cpu", folder=tmp_path)
    assert not run.cached and list(tmp_path.iterdir()) == []


def test_a_cache_path_that_is_a_file_says_so(tmp_path):
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    for folder in (blocker, blocker / "below"):
        problem = cache.writable(folder)
        assert problem and f"{blocker} is not a folder: " in problem and "CHARTLIB_CACHE_DIR" in problem
        assert "File exists" not in problem
    with pytest.warns(UserWarning, match=r"cannot be written: .*runs is not a folder: .*CHARTLIB_CACHE_DIR"):
        assert not cache.cached(CFG, device="cpu", folder=blocker).cached
    assert blocker.read_text() == "not a folder"


# ---------------------------------------------------------------------------------------------
# a disk that fills up while an entry is written

def _fill_the_disk_at(monkeypatch, failing_write: int):
    """From the ``failing_write``-th file write on (1: the payload, 2: the JSON), write half the bytes
    and raise ENOSPC, as a full disk does; the probe (an empty file) still succeeds."""
    real_fdopen, writes = os.fdopen, []

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            writes.append(len(data))
            if len(writes) < failing_write:
                return self.f.write(data)
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(paths.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    return writes


def _entries(folder):
    """The cache folder's files but the claims' lock files (``chartlib.runs.claims``)."""
    return [p.name for p in folder.iterdir() if p.name != claims.FOLDER]


@pytest.mark.parametrize("failing_write", [1, 2], ids=["payload", "json"])
def test_a_full_disk_trains_on_uncached_and_leaves_nothing(tmp_path, monkeypatch, failing_write):
    writes = _fill_the_disk_at(monkeypatch, failing_write)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = cache.cached(CFG, device="cpu", folder=tmp_path)
        again = cache.cached(replace(CFG, drift_weight=2.0), device="cpu", folder=tmp_path)
    assert writes                                              # the write was attempted and failed
    assert not run.cached and run.final["samples"].shape == (40, 2) and not again.cached
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1                                  # once, not once per run
    assert str(tmp_path) in messages[0] and "No space left on device" in messages[0]
    assert "free space" in messages[0] and "CHARTLIB_CACHE_DIR" in messages[0]
    assert _entries(tmp_path) == []                            # no .tmp, no payload without its JSON
    assert [e["event"] for e in cache.LEDGER] == ["trained", "trained"]
    monkeypatch.undo()                                         # space is freed: the next run is cached
    cache.cached(CFG, device="cpu", folder=tmp_path)
    assert cache.cached(CFG, device="cpu", folder=tmp_path).cached


# ---------------------------------------------------------------------------------------------
# leftovers of a killed writer

def test_stale_leftovers_are_swept_and_fresh_ones_kept(tmp_path):
    cache.cached(CFG, device="cpu", folder=tmp_path)
    key = cache.run_key(CFG)
    old = time.time() - 2 * cache.STALE_SECONDS
    whole = [tmp_path / f"{key}.pt", tmp_path / f"{key}.json"]
    stale = [tmp_path / "chart-0.pt.abc123.tmp", tmp_path / "chart-0.json.def456.tmp", tmp_path / "chart-1.pt"]
    fresh = [tmp_path / "chart-2.pt.ghi789.tmp", tmp_path / "chart-3.pt"]
    for path in stale + fresh:
        path.write_bytes(b"partial")
    for path in stale + whole:
        os.utime(path, (old, old))
    cache._SWEPT.clear()                                        # as a new process opening the cache
    assert cache.cached(CFG, device="cpu", folder=tmp_path).cached   # the whole entry, however old, is kept
    assert sorted(_entries(tmp_path)) == sorted(p.name for p in whole + fresh)
    assert sorted(cache.sweep(tmp_path, min_age=0)) == sorted(p.name for p in fresh)
    assert all(p.exists() for p in whole)


# ---------------------------------------------------------------------------------------------
# the run ledger

def test_ledger_notes_trained_then_loaded(tmp_path, monkeypatch):
    ledger = tmp_path / "runs.jsonl"
    monkeypatch.setenv("CHARTLIB_RUN_LEDGER", str(ledger))
    first = cache.cached(CFG, device="cpu", folder=tmp_path / "cache")
    cache.cached(CFG, device="cpu", folder=tmp_path / "cache")
    key = cache.run_key(CFG)
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert lines == cache.LEDGER
    assert [(e["key"], e["event"]) for e in lines] == [(key, "trained"), (key, "loaded")]
    for e in lines:   # the loaded entry carries the recorded training time of the run it loaded
        assert e["seconds"] == pytest.approx(first.seconds, abs=1e-3) and e["seconds"] > 0 and e["device"] == "cpu"
