"""Chapter 1 as the page shows it: table rows and columns, lines for the figures, computed sentences."""
from __future__ import annotations

from chartlib.chapters.mode_collapse import ModeCollapseSettings
from chartlib.measure.scores import COLLAPSED
from chartlib.runs.arms import Result

from .format import percent, spread_text

COLUMNS = {"arm": "field", "seed": "seed", "fractions": "share per mode (left, right)",
           "modes_held": "modes with ≥ 10 %", "far": "share > 4σ from both modes",
           "energy": "energy distance to held-out data", "train_seconds": "train time (s)"}


def seed_rows(result: Result) -> list[dict]:
    return [{"arm": arm.label, **p} for arm in result.arms.values() for p in arm.per_seed]


def majority_lines(result: Result) -> dict[str, list[float]]:
    return {f"{arm.label} · seed {i}": share for arm in result.arms.values()
            for i, share in enumerate(arm.extra["majority_over_training"])}


def measured_text(result: Result, s: ModeCollapseSettings) -> str:
    small, large, multi = (result.arms[k].summary for k in ("small_tau", "large_tau", "multi_tau"))
    baseline = result.measured["floor_energy"]
    return (
        f"**Measured.** With the small temperature, {small['collapsed_seeds']} of {small['seeds']} seeds end with "
        f"at least {percent(COLLAPSED)} of their samples in one mode (mean share of the larger mode "
        f"{small['majority']['mean']:.3f}, energy distance {spread_text(small['energy'])}). "
        f"With τ = {s.large_temperature:g}, {large['both_modes_seeds']} of {large['seeds']} seeds hold both modes "
        f"(larger-mode share {large['majority']['mean']:.3f}, energy distance {large['energy']['mean']:.4f}); "
        f"with the multi-temperature scale-free field, {multi['both_modes_seeds']} of {multi['seeds']} "
        f"(share {multi['majority']['mean']:.3f}, energy distance {multi['energy']['mean']:.4f}). "
        f"The data-vs-data baseline is {baseline:.4f}.")


def sweep_lines(result: Result) -> dict[str, list[float]]:
    sweep = result.measured["sweep"].values()
    return {"share of seeds collapsed": [v["summary"]["collapsed_seeds"] / v["summary"]["seeds"] for v in sweep],
            "mean share of the larger mode": [v["summary"]["majority"]["mean"] for v in sweep]}


SWEEP_COLUMNS = {"ratio": "separation / τ", "tau": "τ", "collapsed": "seeds collapsed",
                 "majority": "mean larger-mode share", "energy": "mean energy distance"}


def sweep_rows(result: Result) -> list[dict]:
    rows = []
    for r, v in result.measured["sweep"].items():
        sm = v["summary"]
        rows.append({"ratio": r, "tau": v["temperature"], "collapsed": f"{sm['collapsed_seeds']} / {sm['seeds']}",
                     "majority": sm["majority"]["mean"], "energy": sm["energy"]["mean"]})
    return rows
