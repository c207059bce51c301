"""Chapter 1's section on the paper's released field, as the page shows it: the floor sweep, the
differences table and where the field points, read from the chapter's record (``Result.record()``)."""
from __future__ import annotations

from chartlib.measure.scores import COLLAPSED

from .claims.mode_collapse import POINT
from .format import percent

FLOOR_COLUMNS = {"floor": "floor", "collapsed": f"seeds ≥ {percent(COLLAPSED)} nearest one mode",
                 "far": "mean share > 4σ from both modes",
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
            f"≥ {percent(COLLAPSED)} of their samples nearest one mode, but that is not a collapse onto a mode: "
            f"{_span(far, '.0%')} of the samples lie more than 4σ from both modes and their spread is "
            f"{_span(spread, '.3f')} (the data's is about {arms['multi_tau']['per_seed'][0]['spread']:.2f}), "
            f"energy distance {rel['summary']['energy']['mean']:.3f}: every sample sits near one point between "
            f"the modes. ")
    if zero is not None:
        zs = zero["summary"]
        text += (f"The same field without the floor holds both modes in {zs['both_modes_seeds']} of {zs['seeds']} "
                 "seeds "
                 f"(energy distance {zs['energy']['mean']:.4f}), like the book's multi-temperature field. ")
    point = sorted(float(f) for f, v in sweep.items() if all(p["far"] >= POINT for p in v["per_seed"]))
    kept = sorted(float(f) for f, v in sweep.items()
                  if all(p["modes_held"] == 2 and p["far"] < POINT for p in v["per_seed"]))
    if point:
        text += (f"In the floor sweep every seed ends at one point at floor{'s' if len(point) > 1 else ''} "
                 f"{', '.join(f'{f:g}' for f in point)}"
                 + (f", and every seed holds both modes at {', '.join(f'{f:g}' for f in kept)}. " if kept else ". "))
    text += (f"At the end of the released run (seed 0), {floored['toward_data_mean'][-1]:.0%} of the floored field "
             f"points at the data's mean and {floored['outward'][-1]:.0%} outward; at the same samples the field "
             f"without the floor points {free['toward_data_mean'][-1]:.0%} at the mean and {free['outward'][-1]:.0%} "
             f"outward: it would spread the point towards the modes.")
    return text
