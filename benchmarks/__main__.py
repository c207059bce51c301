"""python -m benchmarks [--quick] [--device DEV] [--only NAME ...] [--report]

Writes ``_build/bench/<name>.json`` for each benchmark run, then prints the Markdown summary.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from chartlib.common.paths import build_dir
from chartlib.core.nets import pick_device
from chartlib.report.build_record import BUDGETS

from . import drift, executors, stacked, training
from .common import machine, matmul_rate, out_dir, write

os.environ.setdefault("CHARTLIB_PROGRESS", "line")     # the trainers print one line, no progress bar (read per run)


def run_matmul(device, quick, repeats) -> dict:
    sizes = (128, 256) if quick else (256, 1024, 2048)
    return {"settings": {"dtype": "float32", "flops": "2 n^3 per (n, n) @ (n, n)", "repeats": repeats},
            "cases": [{"size": n, "gflops_per_s": matmul_rate(n, device, repeats)} for n in sizes]}


def run_book(device, quick, repeats) -> dict:
    """Notebook wall times of the last ``ci`` and ``full`` builds, from ``_build/timings``."""
    from chartlib.book.build import notebooks
    expected = [p.stem for p in notebooks()]
    out = {"settings": {"source": "_build/timings/<profile>.json written by python -m chartlib.book",
                        "note": "cold times: what a fresh machine pays per notebook (execution plus the recorded "
                                "training time of runs an execution loaded from an earlier build's cache; those "
                                "notebooks are listed as estimated); the total includes Jupyter Book's rendering",
                        "budgets_seconds": BUDGETS}, "missing": [], "profiles": {}}
    for profile, budget in BUDGETS.items():
        path = build_dir() / "timings" / f"{profile}.json"
        if not path.exists():
            out["missing"].append(profile)
            continue
        t = json.loads(path.read_text())
        secs = t.get("cold_seconds") or t.get("notebook_seconds", {})
        total = t.get("cold_total_seconds") or t.get("total_seconds")
        missing = [nb for nb in expected if nb not in secs]
        out["profiles"][profile] = {
            "notebook_seconds": secs, "total_seconds": total, "budget_seconds": budget, "complete": not missing,
            "estimated": sorted(k for k, v in t.get("cold_estimated", {}).items() if v),
            "within_budget": None if missing or total is None else total <= budget,     # None: not every notebook ran
            "notebooks_missing": missing}
    return out


RUNNERS = {"matmul": run_matmul, "drift_field": drift.run, "training_step": training.run_training,
           "sampling": training.run_sampling, "stacked_seeds": stacked.run_stacked,
           "executors": executors.run_executors, "book": run_book}


def _f(x, scale=1.0, digits=3):
    return "–" if x is None else f"{x * scale:.{digits}g}"


def report() -> str:
    """Markdown tables of the JSON files in ``_build/bench``."""
    lines = []
    for name in RUNNERS:
        path = out_dir() / f"{name}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        m = r["machine"]
        lines += ["", f"**{name}** ({m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, "
                      f"{m['device']}, torch {m['torch']}{', quick' if r.get('quick') else ''})", ""]
        if name == "matmul":
            lines += ["| n | GFLOP/s |", "|---|---|"]
            lines += [f"| {c['size']} | {_f(c['gflops_per_s'])} |" for c in r["cases"]]
        elif name == "drift_field":
            lines += ["| n | dim | blocks | ours ms | whole ms | plain ms | time plain/ours | ours MB | plain MB "
                      "| memory plain/ours |", "|" + "---|" * 10]
            for c in r["cases"]:
                o, w, p, q = c["ours"], c["ours_whole"], c["plain"], c["ratios"]
                non_finite = "" if p.get("finite", True) else " (non-finite)"
                lines.append(f"| {c['n']} | {c['dim']} | {c['blocks']} | {_f(o.get('seconds'), 1e3)} | "
                             f"{_f(w.get('seconds'), 1e3)} | {_f(p.get('seconds'), 1e3)}{non_finite} | "
                             f"{_f(q['time_plain_over_ours'])} | {_f(o.get('peak_bytes'), 1e-6)} | "
                             f"{_f(p.get('peak_bytes'), 1e-6)} | {_f(q['memory_plain_over_ours'])} |")
        elif name == "training_step":
            lines += ["| case | step ms | sampling ms | network ms | field ms | parts ms | network GFLOP/s "
                      "| of matmul |", "|" + "---|" * 8]
            for c in r["cases"]:
                s = c["seconds"]
                lines.append(f"| {c['case']} | {_f(s['whole_step'], 1e3)} | {_f(s['sampling'], 1e3)} | "
                             f"{_f(s['network'], 1e3)} | {_f(s['field'], 1e3)} | {_f(s['sum_of_parts'], 1e3)} | "
                             f"{_f(c['network_gflops_per_s'])} | {_f(c['fraction_of_matmul'], 100)} % |")
        elif name == "sampling":
            lines += ["| case | chart samples/s | flow samples/s | chart/flow |", "|---|---|---|---|"]
            lines += [f"| {c['case']} | {c['chart_samples_per_s']:,.0f} | {c['flow_samples_per_s']:,.0f} | "
                      f"{_f(c['ratio_chart_over_flow'])} |" for c in r["cases"]]
        elif name == "stacked_seeds":
            lines += ["| seeds | separate ms | stacked ms | separate/stacked | max parameter difference |",
                      "|---|---|---|---|---|"]
            lines += [f"| {c['seeds']} | {_f(c['separate_seconds'], 1e3)} | {_f(c['stacked_seconds'], 1e3)} | "
                      f"{_f(c['separate_over_stacked'])} | {c['max_abs_parameter_difference']:.2g} |"
                      for c in r["cases"]]
        elif name == "executors":
            lines += ["| executor | workers | start-up s | runs | batch s | runs/min | peak MB per worker | close s "
                      "| same bits as inline |", "|" + "---|" * 9]
            for c in r["cases"]:
                peaks = " / ".join(_f(p, digits=4) for p in c["peak_mb_per_worker"])
                same = "–" if c["identical_to_inline"] is None else c["identical_to_inline"]
                lines.append(f"| {c['executor']} | {c['workers']} | {_f(c['startup_seconds'])} | {c['runs']} | "
                             f"{_f(c['batch_seconds'])} | {_f(c['runs_per_minute'])} | {peaks} | "
                             f"{_f(c['close_seconds'])} | {same} |")
        elif name == "book":
            lines += ["| profile | total s | budget s | within | notebooks missing |", "|---|---|---|---|---|"]
            for k, p in r["profiles"].items():
                within = "incomplete" if p["within_budget"] is None else p["within_budget"]
                lines.append(f"| {k} | {_f(p['total_seconds'], digits=4)} | {p['budget_seconds']} | {within} | "
                             f"{', '.join(p['notebooks_missing']) or '–'} |")
            lines += [f"| {k} | not built | {BUDGETS[k]} | – | – |" for k in r["missing"]]
    return "\n".join(lines[1:]) if lines else f"no benchmark results in {out_dir()}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 2 repeats: a smoke run of well under 30 s")
    ap.add_argument("--device", default=None, help="cpu, cuda or mps (default: chartlib.core.nets.pick_device())")
    ap.add_argument("--only", nargs="+", choices=list(RUNNERS), metavar="NAME",
                    help=f"run only these: {', '.join(RUNNERS)}")
    ap.add_argument("--report", action="store_true", help="only print the Markdown summary of _build/bench")
    args = ap.parse_args(argv)
    if args.report:
        print(report())
        return 0
    device = pick_device(args.device or "auto")
    repeats = 2 if args.quick else 5
    for name in args.only or RUNNERS:
        start = time.perf_counter()
        result = RUNNERS[name](device, args.quick, repeats)
        seconds = time.perf_counter() - start
        path = write(name, {"benchmark": name, "quick": args.quick, "machine": machine(device),
                            "bench_seconds": seconds, **result})
        print(f"[bench] {name}: {seconds:.1f} s -> {path}", flush=True)
    print(report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
