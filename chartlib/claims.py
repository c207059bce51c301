"""Every claim the book tests, the rule that decides it and the verdict words, in one light module
(no torch): the summary chapter and the chapters' own claim tables call these on the metrics JSON.

Verdicts: "reproduced" when the rule holds in every seed (or for every arm it names), "partly" when
it holds in some, "not reproduced" when in none, "not tested" when the chapter did not measure it.
For the book's own claims "reproduced" means that the claim holds in this build.
"""
from __future__ import annotations

import statistics

CHAPTERS = {
    "01_mode_collapse": "Mode collapse",
    "02_chart_transport": "Chart transport",
    "03_space_filling": "Space filling",
    "04_stochastic_encoding": "Stochastic encoding",
    "05_mnist": "MNIST",
}
VERDICTS = ("reproduced", "partly", "not reproduced", "not tested")
OFF = "0.1"            # off-surface distance threshold the surface claims use (the chapters' first)
RATIO = 5.0            # "leave the surface": samples off it at least this many times as often as reconstructions
DETACHED = 10.0        # "loses the data": detached reconstruction error at least this many times the chart's
CRITIC = 5.0           # "critic failure": off-surface share at least this many times the working critic's


COLOURS = {"reproduced": "#d9f2d9", "partly": "#fff0c2", "not reproduced": "#f8d4d4", "not tested": "#e8e8e8"}


def verdict_style(key: str, value) -> str:
    """Inline CSS for a summary table cell: the verdict cell is coloured by its verdict."""
    return f"background: {COLOURS[value]}; font-weight: 600; white-space: nowrap" if key == "verdict" else ""


ENCODINGS = ("deterministic", "stochastic")


def verdict(reproduced: bool | None) -> str:
    """The verdict word of a single rule's outcome (None: not tested)."""
    return {True: "reproduced", False: "not reproduced", None: "not tested"}[reproduced]


def _count_verdict(held: int, total: int) -> str:
    if total == 0:
        return "not tested"
    return "reproduced" if held == total else ("partly" if held else "not reproduced")


def _pm(values: list[float], fmt: str = ".3f") -> str:
    if len(values) == 1:
        return f"{values[0]:{fmt}} (1 seed)"
    return f"{statistics.fmean(values):{fmt}} ± {statistics.stdev(values):{fmt}} over {len(values)} seeds"


def _row(stem, source, claim, measurement, value, rule, verdict) -> dict:
    assert verdict in VERDICTS, verdict
    return {"chapter": CHAPTERS[stem], "stem": stem, "source": source, "claim": claim, "measurement": measurement,
            "value": value, "rule": rule, "verdict": verdict}


# ---------------------------------------------------------------------------------------------

def _mode_collapse(m: dict) -> list[dict]:
    arms, rows = m["arms"], []
    small = arms["small_tau"]["per_seed"]
    collapsed = sum(p["majority"] >= 0.95 for p in small)
    rows.append(_row("01_mode_collapse", "note", "Plain drifting from a disjoint start collapses onto one mode",
                     f"seeds with ≥ 95 % of samples in one mode, {arms['small_tau']['label']}",
                     f"{collapsed}/{len(small)} seeds; larger-mode share {_pm([p['majority'] for p in small])}",
                     "reproduced if every seed collapses, partly if some do", _count_verdict(collapsed, len(small))))
    multi = arms["multi_tau"]["per_seed"]
    both = sum(p["modes_held"] == 2 for p in multi)
    rows.append(_row("01_mode_collapse", "book", "Several temperatures on scale-free distances keep both modes",
                     f"seeds holding both modes (each ≥ 10 %), {arms['multi_tau']['label']}",
                     f"{both}/{len(multi)} seeds; larger-mode share {_pm([p['majority'] for p in multi])}",
                     "reproduced if every seed holds both modes, partly if some do", _count_verdict(both, len(multi))))
    sweep = sorted(((float(r), v["summary"]) for r, v in m["sweep"].items()), key=lambda t: t[0])
    fracs = [s["collapsed_seeds"] / s["seeds"] for _, s in sweep]
    monotone = all(a <= b for a, b in zip(fracs, fracs[1:]))
    none = [r for r, s in sweep if s["collapsed_seeds"] == 0]
    every = [r for r, s in sweep if s["collapsed_seeds"] == s["seeds"]]
    value = "; ".join(f"{r:g}: {s['collapsed_seeds']}/{s['seeds']}" for r, s in sweep)
    if none and every and max(none) < min(every):
        value += f" (sets in between {max(none):g} and {min(every):g})"
    ok = monotone and bool(none) and bool(every)
    rows.append(_row("01_mode_collapse", "book", "Collapse sets in once separation/τ is large enough, and stays",
                     "seeds collapsed at each separation/τ of the sweep", value,
                     "reproduced if the collapsed share never falls as separation/τ grows and goes from no seed to "
                     "every seed; partly if it only rises or only reaches one end",
                     "reproduced" if ok else ("partly" if monotone or none or every else "not reproduced")))
    return rows + _released(m)


FAR = 0.10             # "fits the data": at most this share of decoded samples > 4σ from both modes
POINT = 0.95           # "one point between the modes": at least this share of samples > 4σ from both modes


def _released(m: dict) -> list[dict]:
    """Chapter 1's claims about the paper's released field (missing from measurements made before it)."""
    if "released" not in m["arms"] or "floor_sweep" not in m:
        return [_row("01_mode_collapse", "book", "The released code's field draws the samples to one point between "
                     "the modes; without its floor it keeps both modes", "not measured", "", "", "not tested")]
    rel = m["arms"]["released"]["per_seed"]
    point = sum(p["far"] >= POINT for p in rel)
    rows = [_row("01_mode_collapse", "book", "With the released code's field (floor 1e-6) plain drifting from a "
                 "disjoint start draws every sample to one point between the modes",
                 f"share of samples farther than 4σ from both modes, {m['arms']['released']['label']}",
                 f"{point}/{len(rel)} seeds; share {_pm([p['far'] for p in rel])}; spread {_pm([p['spread'] for p in rel])}",
                 f"reproduced if in every seed at least {POINT:.0%} of the samples are that far, partly if in some",
                 _count_verdict(point, len(rel)))]
    sweep = {float(k): v["per_seed"] for k, v in m["floor_sweep"].items()}
    if 0.0 in sweep:
        both = sum(p["modes_held"] == 2 for p in sweep[0.0])
        floored = [f for f in sweep if f > 0]
        failing = sum(all(p["far"] >= POINT for p in sweep[f]) for f in floored)
        value = "; ".join(f"floor {f:g}: {sum(p['modes_held'] == 2 for p in ps)}/{len(ps)} hold both modes, "
                          f"{sum(p['far'] >= POINT for p in ps)}/{len(ps)} at one point" for f, ps in sorted(sweep.items()))
        held = both == len(sweep[0.0]) and failing == len(floored)
        rows.append(_row("01_mode_collapse", "book", "The floor decides it: without it the released field keeps both "
                         "modes, with any floor tried the samples end at one point",
                         "seeds holding both modes (each ≥ 10 %) and seeds with ≥ 95 % of samples > 4σ from both modes, "
                         "per floor", value,
                         "reproduced if every seed at floor 0 holds both modes and every seed at every floor > 0 ends "
                         "at one point; partly if only one of the two holds",
                         "reproduced" if held else ("partly" if both == len(sweep[0.0]) or failing == len(floored)
                                                    else "not reproduced")))
    return rows


def _chart_transport(m: dict) -> list[dict]:
    arms, rows = m["arms"], []
    ct = arms["chart"]["per_seed"]
    both = sum(p["modes_held"] == 2 for p in ct)
    rows.append(_row("02_chart_transport", "note", "Chart transport covers every mode (same τ that collapses drifting)",
                     "seeds whose decoded samples hold both modes (each ≥ 10 %); energy distance to held-out data",
                     f"{both}/{len(ct)} seeds; energy {_pm([p['energy'] for p in ct], '.4f')} "
                     f"(data floor {m['floor_energy']:.4f})",
                     "reproduced if every seed holds both modes, partly if some do", _count_verdict(both, len(ct))))
    off = arms["offset_encoder"]["per_seed"]
    collapsed = sum(p["majority"] >= 0.95 for p in off)
    start = [p["latent_energy_start"] for p in off]
    rows.append(_row("02_chart_transport", "book", "Chart transport needs latents that start inside the prior",
                     "offset encoder (latents start away from the prior): seeds with ≥ 95 % in one mode",
                     f"{collapsed}/{len(off)} seeds collapsed; starting latent energy distance {_pm(start, '.2f')} "
                     f"vs {_pm([p['latent_energy_start'] for p in ct], '.3f')} for the plain chart",
                     "reproduced if every offset seed collapses while every plain chart seed holds both modes; "
                     "partly if only some offset seeds collapse",
                     _count_verdict(collapsed, len(off)) if both == len(ct) else "not reproduced"))
    det, base = arms["detached_recon"]["per_seed"][0], ct[0]
    ratio = det["recon_error"] / base["recon_error"]
    rows.append(_row("02_chart_transport", "note", "The reconstruction gradient must reach the encoder: with the "
                     "latents detached for reconstruction the chart loses the data",
                     "reconstruction error, latents detached vs not (seed 0)",
                     f"{det['recon_error']:.3g} vs {base['recon_error']:.3g} (×{ratio:.0f})",
                     f"reproduced if the detached error is at least {DETACHED:g}× the chart's",
                     "reproduced" if ratio >= DETACHED else "not reproduced"))
    cost = m["sampling_cost"]
    speed = cost["chart"]["samples_per_second"] / cost["flow matching"]["samples_per_second"]
    fm = arms["flow"]["per_seed"]
    rows.append(_row("02_chart_transport", "book", "A chart samples in 1 network call, flow matching in "
                     f"{cost['flow matching']['network_evaluations']}: far cheaper at similar quality on 2-D data",
                     "samples per second (median of repeats); energy distance of flow matching",
                     f"{cost['chart']['samples_per_second']:,.0f} vs {cost['flow matching']['samples_per_second']:,.0f} "
                     f"samples/s (×{speed:.0f}); flow matching energy {_pm([p['energy'] for p in fm], '.4f')}",
                     "reproduced if the chart samples faster than flow matching",
                     "reproduced" if speed > 1 else "not reproduced"))
    if "released" in arms:
        rel = arms["released"]["per_seed"]
        fits = sum(p["modes_held"] == 2 and p["far"] <= FAR for p in rel)
        rows.append(_row("02_chart_transport", "book", "Chart transport covers both modes with the released code's "
                         "field too (floor 1e-6)", "seeds whose decoded samples hold both modes (each ≥ 10 %) with at "
                         f"most {FAR:.0%} of them farther than 4σ from both; energy distance to held-out data",
                         f"{fits}/{len(rel)} seeds; far from both modes {_pm([p['far'] for p in rel])}; energy "
                         f"{_pm([p['energy'] for p in rel], '.4f')} (book's field {_pm([p['energy'] for p in ct], '.4f')})",
                         "reproduced if every seed does, partly if some do", _count_verdict(fits, len(rel))))
    return rows


def _off(p: dict, key: str) -> float:
    return p[key]["off_surface"][OFF]


def _space_filling(m: dict) -> list[dict]:
    det = m["arms"]["deterministic"]["per_seed"]
    held = sum(_off(p, "samples") >= RATIO * max(_off(p, "recon"), 1e-4) for p in det)
    dims = m["arms"]["deterministic"]["summary"]["latent_dimension"]
    return [_row("03_space_filling", "note", "A deterministic chart of a thin manifold cannot fill the prior; "
                 "its samples leave the surface",
                 f"share of samples vs reconstructions farther than {OFF} from the surface; two-NN dimension of "
                 "the data latents (prior: 3)",
                 f"samples {_pm([_off(p, 'samples') for p in det])}, reconstructions "
                 f"{_pm([_off(p, 'recon') for p in det])}; latent dimension {dims['mean']:.2f}",
                 f"reproduced if in every seed samples are off the surface at least {RATIO:g}× as often as "
                 "reconstructions (floor 1e-4); partly if in some seeds", _count_verdict(held, len(det)))]


def _stochastic(m: dict) -> list[dict]:
    arms, rows = m["arms"], []
    det = {p["seed"]: _off(p, "samples") for p in arms["deterministic"]["per_seed"]}
    sto = {p["seed"]: _off(p, "samples") for p in arms["kernel"]["per_seed"]}
    common = sorted(set(det) & set(sto))
    lower = sum(sto[s] < det[s] for s in common)
    dims = arms["kernel"]["summary"]["latent_dimension"]["mean"]
    rows.append(_row("04_stochastic_encoding", "note", "Stochastic encoding (fibers) keeps samples on the surface",
                     f"share of samples farther than {OFF} from the surface, stochastic (kernel field) vs deterministic, "
                     "same seeds", f"{_pm([sto[s] for s in common])} vs {_pm([det[s] for s in common])}; latent "
                     f"dimension {dims:.2f}", "reproduced if lower in every seed, partly if in some",
                     _count_verdict(lower, len(common))))
    critic = [_off(p, "samples") for p in arms["critic"]["per_seed"]]
    if "failing_critic" not in arms:
        rows.append(_row("04_stochastic_encoding", "book", "The score critic fails when its noise is too small and it "
                         "trains too little", "not measured", "", "", "not tested"))
        return rows
    failing = [_off(p, "samples") for p in arms["failing_critic"]["per_seed"]]
    bad = sum(f >= CRITIC * statistics.fmean(critic) for f in failing)
    rows.append(_row("04_stochastic_encoding", "book", "The score critic fails when its noise is too small and it "
                     "trains too little", f"share of samples farther than {OFF} from the surface, "
                     f"{arms['failing_critic']['label'].removeprefix('stochastic, ')} vs the chapter's critic",
                     f"{_pm(failing)} vs {_pm(critic)}",
                     f"reproduced if at least {CRITIC:g}× the working critic's mean in every seed tried",
                     _count_verdict(bad, len(failing))))
    return rows


def _mnist(m: dict) -> list[dict]:
    from .mnist_claims import mnist_rows      # imported here: mnist_claims builds on this module
    return mnist_rows(m)


SECTIONS = {"01_mode_collapse": _mode_collapse, "02_chart_transport": _chart_transport,
            "03_space_filling": _space_filling, "04_stochastic_encoding": _stochastic, "05_mnist": _mnist}


def claims(metrics: dict[str, dict]) -> list[dict]:
    """Every claim with its measurement, value, rule and verdict, in chapter order (note's claims
    first within a chapter)."""
    rows = [r for stem, section in SECTIONS.items() if stem in metrics for r in section(metrics[stem])]
    return sorted(rows, key=lambda r: (list(CHAPTERS).index(r["stem"]), r["source"] != "note"))


def tally(rows: list[dict], source: str) -> dict[str, int]:
    return {v: sum(r["verdict"] == v and r["source"] == source for r in rows) for v in VERDICTS}
