"""The book's drifting field against the paper's released formulation: the differences one by one,
measured on a run's own samples (chapter 1 trains the arms; this module measures and words them).

The released field is ``chartlib.reference_field.ReferenceKernelField``; each difference is one of
its switches, so "what it changes" is the field with that one switch turned to the book's choice,
compared with the released field at the same movers and positives.
"""
from __future__ import annotations

import torch

from . import metrics
from .reference_field import RELEASED_DEFAULTS, reference_drift_field, released_loss

# (key, the released code, the book, the switch that turns it into the book's choice)
DIFFERENCES = (
    ("floor", "clamps row softmax × column softmax at 1e-6 before the square root: every kernel entry ≥ 1e-3",
     "no floor", {"floor": 0.0}),
    ("scale", "distance scale = mean over all mover-target pairs, self pairs (distance 1e-4) included",
     "mean over the other pairs", {"scale_includes_self": False}),
    ("mask", "adds 100 to each self pair's scaled distance (under the floor the self pair still weighs 1e-3)",
     "self pairs left out", {"mask": "exclude"}),
    ("rms", "each temperature's force at unit RMS per coordinate in scaled units: the displacement is "
     "the distance scale times the book's", "unit RMS per mover vector, in data units", {"per_coordinate_rms": False}),
    ("eps", "squared distances clamped below at 1e-8", "exact distances", {"distance_eps": 0.0}),
)


def field_change(x: torch.Tensor, y: torch.Tensor, temperatures, off: dict) -> dict:
    """Released field at movers x (n, k) with positives y (p, k), against the same with the
    switches in ``off`` set to the book's choice: relative size of the difference and the cosine
    between the two fields (both over all movers)."""
    kw = {**RELEASED_DEFAULTS, "temperatures": tuple(temperatures)}
    a = reference_drift_field(x.double(), y.double(), **kw)
    b = reference_drift_field(x.double(), y.double(), **{**kw, **off})
    return {"relative_change": float((a - b).norm() / a.norm().clamp_min(1e-300)),
            "cosine": float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-300))}


def difference_rows(start: torch.Tensor, end: torch.Tensor, y: torch.Tensor, temperatures) -> list[dict]:
    """One row per difference: what each side does, and how much the field changes when the
    released field takes the book's choice, at the run's first frame (``start``) and last (``end``).
    A last row: the released loss value at both frames (its value cannot tell how far the movers
    are from the data)."""
    rows = []
    for key, released, book, off in DIFFERENCES:
        s, e = field_change(start, y, temperatures, off), field_change(end, y, temperatures, off)
        rows.append({"key": key, "released": released, "book": book,
                     "change_start": s["relative_change"], "cosine_start": s["cosine"],
                     "change_end": e["relative_change"], "cosine_end": e["cosine"]})
    kw = {**RELEASED_DEFAULTS, "temperatures": tuple(temperatures)}
    losses = [float(released_loss(x.double(), y.double(), **kw)) for x in (start, end)]
    energies = [metrics.energy_distance(x, y) for x in (start, end)]
    rows.append({"key": "loss", "released": "loss value mean((field / s)^2): 1 for one temperature wherever the "
                 "movers are; with several it measures only how well their forces agree",
                 "book": "loss value mean |V|^2 of the unit-RMS field (also not a distance to the data)",
                 "loss_start": losses[0], "loss_end": losses[1],
                 "energy_start": energies[0], "energy_end": energies[1]})
    return rows


def field_shape(x: torch.Tensor, y: torch.Tensor, temperatures, floor: float) -> dict:
    """The released field (floor ``floor``) at movers x (n, k), positives y: the fraction of it that
    points at the data's mean (1: all of it) and the fraction that points away from the movers' own
    mean (outward: it spreads them), both as mean projections over the mean field size."""
    x, y = x.double(), y.double()
    v = reference_drift_field(x, y, tuple(temperatures), floor=float(floor))
    unit = lambda d: d / d.norm(dim=1, keepdim=True).clamp_min(1e-300)  # noqa: E731
    size = v.norm(dim=1).mean().clamp_min(1e-300)
    return {"toward_data_mean": float((v * unit(y.mean(0) - x)).sum(1).mean() / size),
            "outward": float((v * unit(x - x.mean(0))).sum(1).mean() / size),
            "spread": float(x.std(0).norm())}


def shape_over_training(frames: torch.Tensor, y: torch.Tensor, temperatures, floors) -> dict:
    """``field_shape`` at every frame (frames, n, k) of a run, for each floor: {floor: {key: [values]}}."""
    out = {}
    for floor in floors:
        rows = [field_shape(f, y, temperatures, floor) for f in frames]
        out[f"{float(floor):g}"] = {k: [r[k] for r in rows] for k in rows[0]}
    return out


# ---------------------------------------------------------------------------------------------
# what chapter 1 shows (``record``: the chapter's Result.record())

FLOOR_COLUMNS = {"floor": "floor", "collapsed": "seeds ≥ 95 % nearest one mode", "far": "mean share > 4σ from both modes",
                 "energy": "mean energy distance to data", "spread": "mean spread of the samples"}


def floor_rows(record: dict) -> list[dict]:
    """The floor sweep of the released field: one row per floor."""
    rows = []
    for floor, v in record["floor_sweep"].items():
        ps = v["per_seed"]
        rows.append({"floor": float(floor), "collapsed": f"{v['summary']['collapsed_seeds']} / {v['summary']['seeds']}",
                     "far": sum(p["far"] for p in ps) / len(ps), "energy": v["summary"]["energy"]["mean"],
                     "spread": sum(p["spread"] for p in ps) / len(ps)})
    return rows


DIFFERENCE_COLUMNS = {"what": "difference", "released": "released code", "book": "this book",
                      "start": "field change at the start (relative size; cosine)",
                      "end": "field change at the end (relative size; cosine)"}


def difference_table(record: dict) -> list[dict]:
    """The differences table: each row's measured change, as text."""
    names = {"floor": "1. floor", "scale": "2. distance scale", "mask": "3. self-pair mask", "rms": "4. force scale",
             "eps": "5. distance clamp", "loss": "6. loss value"}
    rows = []
    for r in record["differences"]:
        if r["key"] == "loss":
            start = f"released loss {r['loss_start']:.3f}; energy distance {r['energy_start']:.3f}"
            end = f"released loss {r['loss_end']:.3f}; energy distance {r['energy_end']:.3f}"
        else:
            start = f"{r['change_start']:.2g}; cos {r['cosine_start']:.3f}"
            end = f"{r['change_end']:.2g}; cos {r['cosine_end']:.3f}"
        rows.append({"what": names[r["key"]], "released": r["released"], "book": r["book"], "start": start, "end": end})
    return rows


def shape_lines(record: dict) -> dict[str, list[float]]:
    """Where the released field points over training (seed 0 of the released arm), with and without its floor."""
    out = {}
    for floor, v in record["field_shape"].items():
        out[f"floor {floor}: share pointing at the data mean"] = v["toward_data_mean"]
        out[f"floor {floor}: share pointing outward"] = v["outward"]
    return out


def _span(values: list[float], fmt: str) -> str:
    lo, hi = format(min(values), fmt), format(max(values), fmt)
    return lo if lo == hi else f"{lo}–{hi}"


def released_text(record: dict, reference_floor: float) -> str:
    """What the released field does in chapter 1, in numbers."""
    arms, sweep = record["arms"], record["floor_sweep"]
    rel = arms["released"]
    far = [p["far"] for p in rel["per_seed"]]
    spread = [p["spread"] for p in rel["per_seed"]]
    zero = next((v for k, v in sweep.items() if float(k) == 0), None)
    shape = record["field_shape"]
    floored, free = shape[f"{reference_floor:g}"], shape["0"]
    text = (f"**Measured.** With the released code's field (τ = 0.02/0.05/0.2 on scale-free distances, floor "
            f"{reference_floor:g}), {rel['summary']['collapsed_seeds']} of {rel['summary']['seeds']} seeds end with "
            f"≥ 95 % of their samples nearest one mode, but that is not a collapse onto a mode: "
            f"{_span(far, '.0%')} of the samples lie more than 4σ from both modes and their spread is "
            f"{_span(spread, '.3f')} (the data's is about {arms['multi_tau']['per_seed'][0]['spread']:.2f}), "
            f"energy distance {rel['summary']['energy']['mean']:.3f}: every sample sits near one point between "
            f"the modes. ")
    if zero is not None:
        zs = zero["summary"]
        text += (f"The same field without the floor holds both modes in {zs['both_modes_seeds']} of {zs['seeds']} seeds "
                 f"(energy distance {zs['energy']['mean']:.4f}), like the book's multi-temperature field. ")
    point = sorted(float(f) for f, v in sweep.items() if all(p["far"] >= 0.95 for p in v["per_seed"]))
    kept = sorted(float(f) for f, v in sweep.items() if all(p["modes_held"] == 2 and p["far"] < 0.95 for p in v["per_seed"]))
    if point:
        text += (f"In the floor sweep every seed ends at one point at floor{'s' if len(point) > 1 else ''} "
                 f"{', '.join(f'{f:g}' for f in point)}"
                 + (f", and every seed holds both modes at {', '.join(f'{f:g}' for f in kept)}. " if kept else ". "))
    text += (f"At the end of the released run (seed 0), {floored['toward_data_mean'][-1]:.0%} of the floored field "
             f"points at the data's mean and {floored['outward'][-1]:.0%} outward; at the same samples the field "
             f"without the floor points {free['toward_data_mean'][-1]:.0%} at the mean and {free['outward'][-1]:.0%} "
             f"outward: it would spread the point towards the modes.")
    return text
