"""The book's drifting field against the paper's released formulation: the differences one by one,
measured on a run's own samples (chapter 1 trains the arms; this module measures;
``chartlib.report.released`` words it).

The released field is ``chartlib.core.fields.ReleasedKernelField``; each difference is one of
its switches, so "what it changes" is the field with that one switch turned to the book's choice,
compared with the released field at the same movers and positives.
"""
from __future__ import annotations

import torch

from chartlib.core.fields.released import RELEASED_DEFAULTS, released_drift_field, released_loss

from . import metrics

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
    a = released_drift_field(x.double(), y.double(), **kw)
    b = released_drift_field(x.double(), y.double(), **{**kw, **off})
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
    v = released_drift_field(x, y, tuple(temperatures), floor=float(floor))

    def unit(d):
        return d / d.norm(dim=1, keepdim=True).clamp_min(1e-300)

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
