"""The benchmark harness runs end to end (``python -m benchmarks --quick``) and writes sane JSON."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("matmul", "drift_field", "training_step", "sampling", "stacked_seeds", "executors", "book")


def test_quick_benchmarks_write_sane_json(tmp_path):
    env = {**os.environ, "CHARTLIB_BUILD_DIR": str(tmp_path), "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--device", "cpu"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| n | dim |" in proc.stdout                     # the Markdown summary was printed
    res = {n: json.loads((tmp_path / "bench" / f"{n}.json").read_text()) for n in NAMES}
    for r in res.values():
        m = r["machine"]
        assert m["cores"] >= 1 and m["torch_threads"] >= 1 and m["device"] == "cpu" and m["cpu"] and m["torch"]
        assert r["quick"] is True

    assert all(c["gflops_per_s"] > 0 for c in res["matmul"]["cases"])

    d = res["drift_field"]
    assert d["check"]["relative"] < 1e-4                      # plain and ours agree on nearby clouds
    assert d["underflow"]["ours, 4 apart"]["finite"] and d["underflow"]["ours, 4 apart"]["zero_rows"] == 0
    assert len(d["cases"]) >= 2
    for c in d["cases"]:
        for v in ("ours", "ours_whole", "plain"):
            assert c[v]["seconds"] > 0 and c[v]["finite"], (v, c)
            assert c[v]["peak_bytes"] is None or c[v]["peak_bytes"] >= 0
        assert abs(c["ratios"]["time_plain_over_ours"] - c["plain"]["seconds"] / c["ours"]["seconds"]) < 1e-9

    t = res["training_step"]
    assert {c["method"] for c in t["cases"]} == {"drift", "chart", "flow"}
    # the stochastic chart is a chart with a Gaussian encoder and the critic field
    assert any(c["method"] == "chart" and c["encoder"] == "Gaussian" and c["field"].startswith("CriticField(")
               for c in t["cases"])
    for c in t["cases"]:
        s = c["seconds"]
        assert s["whole_step"] > 0 and s["sampling"] > 0 and s["network"] > 0 and s["field"] >= 0
        assert abs(s["sum_of_parts"] - (s["sampling"] + s["network"] + s["field"])) < 1e-12
        assert c["network_gflops_per_s"] > 0 and c["fraction_of_matmul"] > 0

    for c in res["sampling"]["cases"]:
        assert c["chart_samples_per_s"] > 0 and c["flow_samples_per_s"] > 0
        assert abs(c["ratio_chart_over_flow"] - c["chart_samples_per_s"] / c["flow_samples_per_s"]) < 1e-9

    stacked = res["stacked_seeds"]["cases"]
    assert [c["seeds"] for c in stacked] == [1, 3]
    for c in stacked:       # stacking the seeds' networks trains each seed's network as it trains alone
        assert c["separate_seconds"] > 0 and c["stacked_seconds"] > 0 and c["max_abs_parameter_difference"] < 1e-6

    ex = res["executors"]["cases"]
    assert [c["executor"] for c in ex] == ["inline", "processes", "dask-local"]
    for c in ex:               # every executor trains the runs bit for bit as this process does
        assert c["startup_seconds"] >= 0 and c["batch_seconds"] > 0 and c["runs"] == 4 and c["close_seconds"] >= 0
        assert abs(c["runs_per_minute"] - 60 * c["runs"] / c["batch_seconds"]) < 1e-9
        assert len(c["peak_mb_per_worker"]) == c["workers"] and all(p > 100 for p in c["peak_mb_per_worker"])
        assert c["identical_to_inline"] is (None if c["executor"] == "inline" else True)

    b = res["book"]                                           # the tmp build folder has no timings
    assert sorted(b["missing"]) == ["ci", "full"] and b["settings"]["budgets_seconds"] == {"ci": 300, "full": 2700}
