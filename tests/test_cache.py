"""The run cache: hits, misses, and damaged entries that must be retrained, never used."""
import json
from dataclasses import replace

import pytest
import torch

from chartlib import cache
from chartlib.methods import ChartConfig, Schedule

CFG = ChartConfig(schedule=Schedule(steps=8, batch=32, width=16, depth=1, n_snapshots=3, n_show=20, n_eval=40))


def test_miss_then_hit(tmp_path):
    first = cache.cached(CFG, device="cpu", folder=tmp_path)
    assert not first.cached
    key = cache.run_key(CFG)
    assert (tmp_path / f"{key}.pt").exists() and (tmp_path / f"{key}.json").exists()
    second = cache.cached(CFG, device="cpu", folder=tmp_path)
    assert second.cached
    assert torch.equal(first.final["samples"], second.final["samples"])
    assert second.history == first.history and second.steps == first.steps


def test_every_field_and_the_code_version_change_the_key(monkeypatch):
    keys = {cache.run_key(CFG), cache.run_key(replace(CFG, drift_weight=2.0)),
            cache.run_key(replace(CFG, schedule=replace(CFG.schedule, seed=1)))}
    assert len(keys) == 3
    monkeypatch.setattr(cache, "code_version", lambda: "edited")
    assert cache.run_key(CFG) not in keys


@pytest.mark.parametrize("damage", ["truncate", "flip", "bad_json", "other_config", "missing_payload"])
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
    else:
        pt.unlink()
    with pytest.warns(UserWarning, match="ignored and retrained"):
        again = cache.cached(CFG, device="cpu", folder=tmp_path)
    assert not again.cached
    assert torch.equal(again.final["samples"], original.final["samples"])   # deterministic retrain
    assert cache.cached(CFG, device="cpu", folder=tmp_path).cached            # and the entry is whole again


def test_a_failed_run_leaves_no_entry(tmp_path):
    from test_methods import NaNData
    from chartlib.methods import TrainingDiverged
    with pytest.raises(TrainingDiverged):
        cache.cached(replace(CFG, data=NaNData()), device="cpu", folder=tmp_path)
    assert list(tmp_path.iterdir()) == []
