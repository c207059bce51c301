"""Chapter 1's claims: collapse, several temperatures, the sweep, the released field and its floor."""
from __future__ import annotations

from chartlib.measure.scores import COLLAPSED

from ..format import percent
from .verdicts import count_verdict, per_seed, row

FAR = 0.10             # "fits the data": at most this share of decoded samples > 4σ from both modes
POINT = 0.95           # "one point between the modes": at least this share of samples > 4σ from both modes


def claims(m: dict) -> list[dict]:
    arms, rows = m["arms"], []
    small = arms["small_tau"]["per_seed"]
    collapsed = sum(p["majority"] >= COLLAPSED for p in small)
    rows.append(row("01_mode_collapse", "note", "Plain drifting from a disjoint start collapses onto one mode",
                     f"seeds with ≥ {percent(COLLAPSED)} of samples in one mode, {arms['small_tau']['label']}",
                     f"{collapsed}/{len(small)} seeds; larger-mode share {per_seed([p['majority'] for p in small])}",
                     "reproduced if every seed collapses, partly if some do", count_verdict(collapsed, len(small)),
                     keys=("arms.small_tau",)))
    multi = arms["multi_tau"]["per_seed"]
    both = sum(p["modes_held"] == 2 for p in multi)
    rows.append(row("01_mode_collapse", "book", "Several temperatures on scale-free distances keep both modes",
                     f"seeds holding both modes (each ≥ 10 %), {arms['multi_tau']['label']}",
                     f"{both}/{len(multi)} seeds; larger-mode share {per_seed([p['majority'] for p in multi])}",
                     "reproduced if every seed holds both modes, partly if some do", count_verdict(both, len(multi)),
                     keys=("arms.multi_tau",)))
    sweep = sorted(((float(r), v["summary"]) for r, v in m["sweep"].items()), key=lambda t: t[0])
    fracs = [s["collapsed_seeds"] / s["seeds"] for _, s in sweep]
    monotone = all(a <= b for a, b in zip(fracs, fracs[1:]))
    none = [r for r, s in sweep if s["collapsed_seeds"] == 0]
    every = [r for r, s in sweep if s["collapsed_seeds"] == s["seeds"]]
    value = "; ".join(f"{r:g}: {s['collapsed_seeds']}/{s['seeds']}" for r, s in sweep)
    if none and every and max(none) < min(every):
        value += f" (sets in between {max(none):g} and {min(every):g})"
    ok = monotone and bool(none) and bool(every)
    rows.append(row("01_mode_collapse", "book", "Collapse sets in once separation/τ is large enough, and stays",
                     "seeds collapsed at each separation/τ of the sweep", value,
                     "reproduced if the collapsed share never falls as separation/τ grows and goes from no seed to "
                     "every seed; partly if it only rises or only reaches one end",
                     "reproduced" if ok else ("partly" if monotone or none or every else "not reproduced"),
                     keys=("sweep",)))
    return rows + _released(m)


def _released(m: dict) -> list[dict]:
    """Chapter 1's claims about the paper's released field (missing from measurements made before it)."""
    if "released" not in m["arms"] or "floor_sweep" not in m:
        return [row("01_mode_collapse", "book", "The released code's field draws the samples to one point between "
                     "the modes; without its floor it keeps both modes", "not measured", "", "", "not tested")]
    rel = m["arms"]["released"]["per_seed"]
    point = sum(p["far"] >= POINT for p in rel)
    rows = [row("01_mode_collapse", "book", "With the released code's field (floor 1e-6) plain drifting from a "
                 "disjoint start draws every sample to one point between the modes",
                 f"share of samples farther than 4σ from both modes, {m['arms']['released']['label']}",
                 f"{point}/{len(rel)} seeds; share {per_seed([p['far'] for p in rel])}; "
                 f"spread {per_seed([p['spread'] for p in rel])}",
                 f"reproduced if in every seed at least {POINT:.0%} of the samples are that far, partly if in some",
                 count_verdict(point, len(rel)), keys=("arms.released",))]
    sweep = {float(k): v["per_seed"] for k, v in m["floor_sweep"].items()}
    if 0.0 in sweep:
        both = sum(p["modes_held"] == 2 for p in sweep[0.0])
        floored = [f for f in sweep if f > 0]
        failing = sum(all(p["far"] >= POINT for p in sweep[f]) for f in floored)
        value = "; ".join(f"floor {f:g}: {sum(p['modes_held'] == 2 for p in ps)}/{len(ps)} hold both modes, "
                          f"{sum(p['far'] >= POINT for p in ps)}/{len(ps)} at one point"
                          for f, ps in sorted(sweep.items()))
        held = both == len(sweep[0.0]) and failing == len(floored)
        rows.append(row("01_mode_collapse", "book", "The floor decides it: without it the released field keeps both "
                         "modes, with any floor tried the samples end at one point",
                        "seeds holding both modes (each ≥ 10 %) and seeds with "
                        f"≥ {percent(POINT)} of samples > 4σ from both modes, "
                         "per floor", value,
                         "reproduced if every seed at floor 0 holds both modes and every seed at every floor > 0 ends "
                         "at one point; partly if only one of the two holds",
                         "reproduced" if held else ("partly" if both == len(sweep[0.0]) or failing == len(floored)
                                                    else "not reproduced"), keys=("floor_sweep",)))
    return rows


