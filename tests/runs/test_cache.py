"""The run cache: hits, misses, damaged entries that must be retrained (never used), an unwritable
folder, and the ledger of what every call trained or loaded (read by the book build: its reading is
tested in tests/book/test_timings.py; the code version in tests/runs/test_code_version.py)."""
import json
from dataclasses import asdict, dataclass, replace

import pytest
import torch

from chartlib.core.encoders import Gaussian
from chartlib.core.fields import CriticField, KernelField
from chartlib.core.methods import ChartConfig, DriftConfig, FlowConfig
from chartlib.core.training import Schedule, TrainingDiverged
from chartlib.runs import cache
from tests.helpers import NaNData

SCHED = Schedule(steps=8, batch=32, width=16, depth=1, n_snapshots=3, n_show=20, n_eval=40)
CFG = ChartConfig(schedule=SCHED)


@pytest.fixture(autouse=True)
def _fresh_ledger(monkeypatch):
    """Each test sees its own in-process ledger and no ledger file unless it sets one."""
    monkeypatch.setattr(cache, "LEDGER", [])
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
    with pytest.warns(UserWarning, match="ignored and retrained"):
        again = cache.cached(CFG, device="cpu", folder=tmp_path)
    assert not again.cached
    assert torch.equal(again.final["samples"], original.final["samples"])   # deterministic retrain
    assert cache.cached(CFG, device="cpu", folder=tmp_path).cached            # and the entry is whole again


def test_a_failed_run_leaves_no_entry(tmp_path):
    with pytest.raises(TrainingDiverged, match="my arm · seed 0: loss became nan at step 0"):
        cache.cached(replace(CFG, data=NaNData()), device="cpu", folder=tmp_path, label="my arm · seed 0")
    assert list(tmp_path.iterdir()) == []
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
