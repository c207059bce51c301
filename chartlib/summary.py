"""The summary chapter: every claim, the measurement that tests it, and a verdict computed from the
chapters' metrics JSON (``_build/metrics/<notebook>.json``) by a rule stated next to it.

``load_metrics`` reads the chapters' files; ``claims`` turns them into rows (one dict per claim:
chapter, source, claim, measurement, value, rule, verdict); ``timing_rows`` reads the build's
wall times per notebook.  Nothing here trains or samples.

Verdicts: "reproduced" when the rule holds in every seed (or for every arm it names), "partly" when
it holds in some, "not reproduced" when in none, "not tested" when the chapter did not measure it.
For the book's own claims "reproduced" means that the claim holds in this build.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from .paths import build_dir

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
BUDGETS = {"ci": 300, "full": 2700}   # whole-book wall time a fresh 2-core CPU machine may take, seconds


COLOURS = {"reproduced": "#d9f2d9", "partly": "#fff0c2", "not reproduced": "#f8d4d4", "not tested": "#e8e8e8"}


def verdict_style(key: str, value) -> str:
    """Inline CSS for a summary table cell: the verdict cell is coloured by its verdict."""
    return f"background: {COLOURS[value]}; font-weight: 600; white-space: nowrap" if key == "verdict" else ""


class MissingMetrics(FileNotFoundError):
    pass


def load_metrics(folder: Path | None = None, stems=tuple(CHAPTERS)) -> dict[str, dict]:
    """The chapters' metrics by notebook stem.  Raises MissingMetrics naming what to run first."""
    folder = (build_dir() if folder is None else Path(folder)) / "metrics"
    out, missing = {}, []
    for stem in stems:
        path = folder / f"{stem}.json"
        if not path.exists():
            missing.append(stem)
            continue
        try:
            out[stem] = json.loads(path.read_text())
        except ValueError as e:
            raise MissingMetrics(f"{path} is not valid JSON ({e}): re-run that chapter, e.g. "
                                 f"python -m chartlib.build --only {stem}") from None
    if missing:
        raise MissingMetrics(f"no measurements yet for {', '.join(missing)} in {folder}: execute those chapters first "
                             f"(python -m chartlib.build --profile ci, or run the notebooks), then this one")
    profiles = {m.get("profile") for m in out.values()}
    if len(profiles) > 1:
        raise MissingMetrics(f"the chapters' measurements come from different profiles ({sorted(map(str, profiles))}): "
                             f"rebuild them with one profile")
    return out


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
                     f"seeds with ≥ 95 % of samples in one mode, {arms['small_tau']['name']}",
                     f"{collapsed}/{len(small)} seeds; larger-mode share {_pm([p['majority'] for p in small])}",
                     "reproduced if every seed collapses, partly if some do", _count_verdict(collapsed, len(small))))
    multi = arms["multi_tau"]["per_seed"]
    both = sum(p["modes_held"] == 2 for p in multi)
    rows.append(_row("01_mode_collapse", "book", "Several temperatures on scale-free distances keep both modes",
                     f"seeds holding both modes (each ≥ 10 %), {arms['multi_tau']['name']}",
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
    return rows


def _chart_transport(m: dict) -> list[dict]:
    arms, rows = m["arms"], []
    ct = arms["chart transport"]["per_seed"]
    both = sum(p["modes_held"] == 2 for p in ct)
    rows.append(_row("02_chart_transport", "note", "Chart transport covers every mode (same τ that collapses drifting)",
                     "seeds whose decoded samples hold both modes (each ≥ 10 %); energy distance to held-out data",
                     f"{both}/{len(ct)} seeds; energy {_pm([p['energy'] for p in ct], '.4f')} "
                     f"(data floor {m['floor_energy']:.4f})",
                     "reproduced if every seed holds both modes, partly if some do", _count_verdict(both, len(ct))))
    off = arms["chart, offset encoder"]["per_seed"]
    collapsed = sum(p["majority"] >= 0.95 for p in off)
    start = [p["latent_energy_start"] for p in off]
    rows.append(_row("02_chart_transport", "book", "Chart transport needs latents that start inside the prior",
                     "offset encoder (latents start away from the prior): seeds with ≥ 95 % in one mode",
                     f"{collapsed}/{len(off)} seeds collapsed; starting latent energy distance {_pm(start, '.2f')} "
                     f"vs {_pm([p['latent_energy_start'] for p in ct], '.3f')} for the plain chart",
                     "reproduced if every offset seed collapses while every plain chart seed holds both modes; "
                     "partly if only some offset seeds collapse",
                     _count_verdict(collapsed, len(off)) if both == len(ct) else "not reproduced"))
    det, base = arms["chart, detached reconstruction"]["per_seed"][0], ct[0]
    ratio = det["recon_error"] / base["recon_error"]
    rows.append(_row("02_chart_transport", "note", "The reconstruction gradient must reach the encoder: with the "
                     "latents detached for reconstruction the chart loses the data",
                     "reconstruction error, latents detached vs not (seed 0)",
                     f"{det['recon_error']:.3g} vs {base['recon_error']:.3g} (×{ratio:.0f})",
                     f"reproduced if the detached error is at least {DETACHED:g}× the chart's",
                     "reproduced" if ratio >= DETACHED else "not reproduced"))
    cost = m["sampling_cost"]
    speed = cost["chart"]["samples_per_second"] / cost["flow matching"]["samples_per_second"]
    fm = arms["flow matching"]["per_seed"]
    rows.append(_row("02_chart_transport", "book", "A chart samples in 1 network call, flow matching in "
                     f"{cost['flow matching']['network_evaluations']}: far cheaper at similar quality on 2-D data",
                     "samples per second (median of repeats); energy distance of flow matching",
                     f"{cost['chart']['samples_per_second']:,.0f} vs {cost['flow matching']['samples_per_second']:,.0f} "
                     f"samples/s (×{speed:.0f}); flow matching energy {_pm([p['energy'] for p in fm], '.4f')}",
                     "reproduced if the chart samples faster than flow matching",
                     "reproduced" if speed > 1 else "not reproduced"))
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
    sto = {p["seed"]: _off(p, "samples") for p in arms["stochastic, kernel field"]["per_seed"]}
    common = sorted(set(det) & set(sto))
    lower = sum(sto[s] < det[s] for s in common)
    dims = arms["stochastic, kernel field"]["summary"]["latent_dimension"]["mean"]
    rows.append(_row("04_stochastic_encoding", "note", "Stochastic encoding (fibers) keeps samples on the surface",
                     f"share of samples farther than {OFF} from the surface, stochastic (kernel field) vs deterministic, "
                     "same seeds", f"{_pm([sto[s] for s in common])} vs {_pm([det[s] for s in common])}; latent "
                     f"dimension {dims:.2f}", "reproduced if lower in every seed, partly if in some",
                     _count_verdict(lower, len(common))))
    critic = [_off(p, "samples") for p in arms["stochastic, critic field"]["per_seed"]]
    failing_name = next((k for k in arms if k.startswith("stochastic, critic at")), None)
    if failing_name is None:
        rows.append(_row("04_stochastic_encoding", "book", "The score critic fails when its noise is too small and it "
                         "trains too little", "not measured", "", "", "not tested"))
        return rows
    failing = [_off(p, "samples") for p in arms[failing_name]["per_seed"]]
    bad = sum(f >= CRITIC * statistics.fmean(critic) for f in failing)
    rows.append(_row("04_stochastic_encoding", "book", "The score critic fails when its noise is too small and it "
                     "trains too little", f"share of samples farther than {OFF} from the surface, "
                     f"{failing_name.removeprefix('stochastic, ')} vs the chapter's critic",
                     f"{_pm(failing)} vs {_pm(critic)}",
                     f"reproduced if at least {CRITIC:g}× the working critic's mean in every seed tried",
                     _count_verdict(bad, len(failing))))
    return rows


def _mnist(m: dict) -> list[dict]:
    from .experiments_mnist import note_claims, verdict   # recomputed from the FDs, not read back

    rows = []
    for c in note_claims({"arms": m["arms"]}):
        rows.append(_row("05_mnist", "note", c["claim"], "FD-LeNet of each arm's samples (one training seed)",
                         c["evidence"], c["rule"], verdict(c["reproduced"])))
    fm = m["arms"].get("flow matching")
    charts = [a for a in m["arms"].values() if a["kind"] == "chart"]
    if fm and charts:
        sps = statistics.median(a["sampling"]["samples_per_second"] for a in charts)
        speed = sps / fm["sampling"]["samples_per_second"]
        best = min(charts, key=lambda a: a["scores"]["fd"])
        rows.append(_row("05_mnist", "book", "On MNIST a chart samples far faster than flow matching",
                         "samples per second (median over charts vs flow matching); best FD of each",
                         f"×{speed:.0f}; FD best chart {best['scores']['fd']:.3g} vs flow matching {fm['scores']['fd']:.3g}",
                         "reproduced if the charts sample faster", "reproduced" if speed > 1 else "not reproduced"))
    return rows


SECTIONS = {"01_mode_collapse": _mode_collapse, "02_chart_transport": _chart_transport,
            "03_space_filling": _space_filling, "04_stochastic_encoding": _stochastic, "05_mnist": _mnist}


def claims(metrics: dict[str, dict]) -> list[dict]:
    """Every claim with its measurement, value, rule and verdict, in chapter order (note's claims
    first within a chapter)."""
    rows = [r for stem, section in SECTIONS.items() if stem in metrics for r in section(metrics[stem])]
    return sorted(rows, key=lambda r: (list(CHAPTERS).index(r["stem"]), r["source"] != "note"))


def tally(rows: list[dict], source: str) -> dict[str, int]:
    return {v: sum(r["verdict"] == v and r["source"] == source for r in rows) for v in VERDICTS}


def timing_rows(folder: Path | None = None) -> tuple[list[dict], dict]:
    """Wall seconds per notebook for each profile built in this folder, and the machine of each.

    A cell is what a fresh machine pays for the notebook: its last execution time, plus the recorded
    training time of runs that execution loaded from an earlier build's cache (marked "≈")."""
    folder = (build_dir() if folder is None else Path(folder)) / "timings"
    found = {}
    for profile in ("ci", "full"):
        path = folder / f"{profile}.json"
        if path.exists():
            found[profile] = json.loads(path.read_text())
    stems = [s for s in [*CHAPTERS, "06_summary", "render"] if any(s in t.get("notebook_seconds", {}) for t in found.values())]

    def cell(t: dict, stem: str):
        if stem not in t.get("cold_seconds", {}):
            return t.get("notebook_seconds", {}).get(stem, "")
        return f"≈ {t['cold_seconds'][stem]:.0f}" if t["cold_estimated"].get(stem) else round(t["cold_seconds"][stem])

    rows = [{"notebook": s, **{p: cell(t, s) for p, t in found.items()}} for s in stems]
    machines = {p: t.get("machine", {}) for p, t in found.items()}
    return rows, machines


def timing_totals(folder: Path | None = None) -> dict[str, dict]:
    """Per profile built in this folder: the cold total (seconds a fresh machine pays for the whole
    book), whether any part of it is estimated from cached runs, and the budget."""
    folder = (build_dir() if folder is None else Path(folder)) / "timings"
    out = {}
    for profile, budget in BUDGETS.items():
        path = folder / f"{profile}.json"
        if path.exists():
            t = json.loads(path.read_text())
            seconds = t.get("cold_total_seconds") or t.get("total_seconds")
            out[profile] = {"seconds": seconds, "estimated": any(t.get("cold_estimated", {}).values()),
                            "budget": budget, "within": seconds is not None and seconds <= budget}
    return out


def timing_sentence(folder: Path | None = None) -> str:
    """The whole-book cold time of each profile built in this folder against its budget, in words."""
    totals = timing_totals(folder)
    if not totals:
        return "No build has recorded its timings in this folder yet (they appear after `python -m chartlib.build`)."
    return " ".join(f"A fresh machine needs {'about ' if t['estimated'] else ''}{t['seconds']:.0f} s "
                    f"({t['seconds'] / 60:.1f} min) for the whole {p} book, against a budget of {t['budget'] / 60:.0f} min"
                    f" ({'within' if t['within'] else 'over'} it)." for p, t in totals.items()) + \
        " Values marked ≈ add the recorded training time of runs this folder's cache already held."
