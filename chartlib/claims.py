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


CLEAR_MARGIN = 1.2    # "visibly worse": FD at least 20 % above the other arm's
BREAKDOWN = 2.0       # "breaks down": FD at least twice the same encoding's 12-D value
MUCH_WORSE = 1.5      # "much worse": FD at least 1.5 times the other encoding's


def fd_by_arm(record: dict) -> dict[tuple[int, str], list[float]]:
    """FD of every chart arm of the MNIST metrics record, by (latent dim, encoding): one value per
    training seed, in seed order (so the i-th values of two arms share a seed)."""
    return {(a["latent_dim"], a["encoding"]): [p["scores"]["fd"] for p in sorted(a["per_seed"], key=lambda p: p["seed"])]
            for a in record["arms"].values() if a["kind"] == "chart"}


def _note_rules(fd: dict[tuple[int, str], float], low: int, mid: int, high: int) -> list[dict]:
    """The note's MNIST claims on one FD per arm: claim, rule, evidence, reproduced (bool, or None
    when an arm the rule needs is missing).  The note compared 12-, 32- and 128-D charts, so its
    claims are read on those dimensions only; the rest of the curve is the book's own claim."""
    dims = [d for d in sorted({d for d, _ in fd}) if d in (low, mid, high)]
    encs = [e for e in ENCODINGS if any(k[1] == e for k in fd)]

    def have(*keys):
        return all(k in fd for k in keys)

    def f(d, e):
        return f"{fd[(d, e)]:.3g}"

    claims = []
    ok = [all(fd[(low, e)] < fd[(d, e)] for d in dims if d != low and (d, e) in fd) for e in encs if (low, e) in fd]
    claims.append({
        "claim": f"{low}-D latents give the best samples",
        "rule": f"for each encoding, the {low}-D chart has a lower FD than the {mid}- and {high}-D ones",
        "evidence": "; ".join(f"{e}: " + ", ".join(f"{d}-D {f(d, e)}" for d in dims if (d, e) in fd) for e in encs),
        "reproduced": (all(ok) if ok and len(dims) > 1 else None)})

    def worse_than_low(d: int, factor: float, claim: str, every_encoding: bool) -> dict:
        """FD at d at least ``factor`` times the same encoding's FD at ``low``; ``every_encoding``:
        untested unless both encodings were trained."""
        pairs = [e for e in encs if have((low, e), (d, e))]
        ok = [fd[(d, e)] >= factor * fd[(low, e)] for e in pairs]
        tested = len(ok) == len(ENCODINGS) if every_encoding else bool(ok)
        return {"claim": claim, "rule": f"for each encoding, FD at {d}-D ≥ {factor:g} × FD at {low}-D",
                "evidence": "; ".join(f"{e}: {f(d, e)} vs {f(low, e)} (×{fd[(d, e)] / fd[(low, e)]:.2f})" for e in pairs),
                "reproduced": all(ok) if tested else None}

    claims.append(worse_than_low(mid, CLEAR_MARGIN, f"{mid}-D samples are visibly worse than {low}-D", False))
    claims.append(worse_than_low(high, BREAKDOWN, f"at {high}-D both encodings break down", True))
    det, sto = (high, "deterministic"), (high, "stochastic")
    claims.append({
        "claim": f"at {high}-D the deterministic chart fails much worse than the stochastic one",
        "rule": f"FD deterministic ≥ {MUCH_WORSE:g} × FD stochastic at {high}-D",
        "evidence": (f"{f(*det)} vs {f(*sto)} (×{fd[det] / fd[sto]:.2f})" if have(det, sto) else "not trained"),
        "reproduced": (fd[det] >= MUCH_WORSE * fd[sto]) if have(det, sto) else None})
    above = [d for d in dims if d > low and have((d, "deterministic"), (d, "stochastic"))]
    claims.append({
        "claim": "stochastic encoding mitigates the failure at larger latent dimensions",
        "rule": f"at {mid}-D and {high}-D, FD stochastic < FD deterministic",
        "evidence": "; ".join(f"{d}-D: {f(d, 'stochastic')} vs {f(d, 'deterministic')}" for d in above),
        "reproduced": all(fd[(d, "stochastic")] < fd[(d, "deterministic")] for d in above) if above else None})
    pair = ((low, "deterministic"), (low, "stochastic"))
    claims.append({
        "claim": f"at the matched dimension ({low}-D) deterministic encoding gives the better samples",
        "rule": f"FD deterministic < FD stochastic at {low}-D",
        "evidence": (f"{f(*pair[0])} vs {f(*pair[1])}" if have(*pair) else "not trained"),
        "reproduced": (fd[pair[0]] < fd[pair[1]]) if have(*pair) else None})
    return claims


def mnist_note_claims(fd: dict[tuple[int, str], list[float]], low: int = 12, mid: int = 32,
                      high: int = 128) -> list[dict]:
    """The note's MNIST claims decided over seeds, as in the other chapters: each rule is applied to
    every seed's FDs (arms paired by seed), "reproduced" if it holds in every seed, "partly" in some.

    ``fd``: per-seed FDs by (latent dim, encoding), as :func:`fd_by_arm` gives.  Returns one dict
    per claim: claim, rule, evidence (FDs averaged over seeds, and in how many seeds the rule held),
    held and tested (seed counts) and verdict.
    """
    means = {k: statistics.fmean(v) for k, v in fd.items()}
    seeds = max((len(v) for v in fd.values()), default=0)
    each = [_note_rules({k: v[i] for k, v in fd.items() if i < len(v)}, low, mid, high) for i in range(seeds)]
    out = []
    for j, c in enumerate(_note_rules(means, low, mid, high)):
        outcomes = [rules[j]["reproduced"] for rules in each if rules[j]["reproduced"] is not None]
        held, tested = sum(outcomes), len(outcomes)
        evidence = c["evidence"] if tested else "not trained"
        if tested:
            evidence += (f" (mean over {seeds} seeds; the rule holds in {held} of {tested})" if seeds > 1
                         else " (1 seed)")
        out.append({"claim": c["claim"], "rule": c["rule"], "evidence": evidence, "held": held, "tested": tested,
                    "verdict": _count_verdict(held, tested)})
    return out


def mnist_claims_sentence(claims: list[dict], profile: str) -> str:
    """A summary of the verdicts, with a caveat for the ci profile (computed)."""
    tested = [c for c in claims if c["verdict"] != "not tested"]
    yes = [c for c in tested if c["verdict"] == "reproduced"]
    part = [c for c in tested if c["verdict"] == "partly"]
    text = f"**{len(yes)} of {len(tested)}** tested claims reproduce in every seed of this run"
    if part:
        text += f", {len(part)} in some seeds only"
    if len(tested) < len(claims):
        text += f" ({len(claims) - len(tested)} could not be tested: an arm they need was not trained)"
    text += "."
    if profile == "ci":
        text += (" This is the ci profile: a few hundred steps of small networks, so the verdicts say "
                 "little about the note; the full profile is the measurement.")
    return text


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


FLOW_FIX = 3.0      # the fixed flow matching must reach at most a third of the velocity-prediction FD
NEAR_ID = 2.0       # "near the intrinsic dimension": within this factor of MNIST's two-NN dimension


def _per_seed_fd(arm: dict) -> list[float]:
    return [p["scores"]["fd"] for p in sorted(arm["per_seed"], key=lambda p: p["seed"])]


def best_dimensions(fd: dict[tuple[int, str], list[float]]) -> list[dict[str, int]]:
    """Per seed, the latent dimension of lowest FD for each encoding (arms paired by seed)."""
    seeds = min((len(v) for v in fd.values()), default=0)
    out = []
    for i in range(seeds):
        best = {}
        for e in ENCODINGS:
            row = {d: v[i] for (d, enc), v in fd.items() if enc == e}
            if len(row) > 1:
                best[e] = min(row, key=row.get)
        out.append(best)
    return out


def _mnist(m: dict) -> list[dict]:
    rows = []
    for c in mnist_note_claims(fd_by_arm(m)):
        rows.append(_row("05_mnist", "note", c["claim"], "FD-LeNet of each arm's samples, rule applied per training seed",
                         c["evidence"], c["rule"] + "; reproduced if in every seed, partly if in some", c["verdict"]))
    arms = m["arms"]
    fm, old = arms.get("flow"), arms.get("flow-velocity")
    if fm and old:
        new_fd, old_fd = _per_seed_fd(fm), _per_seed_fd(old)
        fixed = sum(a * FLOW_FIX <= b for a, b in zip(new_fd, old_fd))
        rows.append(_row("05_mnist", "book", "Predicting the clean digit instead of the velocity makes flow matching "
                         "on pixels work", "FD-LeNet of flow matching, clean prediction vs velocity prediction, per seed",
                         f"{_pm(new_fd, '.0f')} vs {_pm(old_fd, '.0f')}",
                         f"reproduced if FD ≤ 1/{FLOW_FIX:g} of the velocity prediction's in every seed, partly if in some",
                         _count_verdict(fixed, min(len(new_fd), len(old_fd)))))
    intrinsic = m.get("intrinsic", {}).get("pixels", {}).get("test", {}).get("estimate")
    best = best_dimensions(fd_by_arm(m))
    if intrinsic and best and best[0]:
        near = sum(all(intrinsic / NEAR_ID <= d <= intrinsic * NEAR_ID for d in b.values()) for b in best)
        rows.append(_row("05_mnist", "book", "The best latent dimension lies near MNIST's intrinsic dimension",
                         "latent dimension of lowest FD per encoding and seed; two-NN dimension of the test digits' pixels",
                         "; ".join(f"seed {i}: " + ", ".join(f"{e} {d}-D" for e, d in b.items()) for i, b in enumerate(best))
                         + f"; intrinsic {intrinsic:.1f}",
                         f"reproduced if within a factor {NEAR_ID:g} of the intrinsic dimension for both encodings in "
                         f"every seed, partly if in some", _count_verdict(near, len(best))))
    charts = [a for a in arms.values() if a["kind"] == "chart"]
    if fm and charts:
        sps = lambda arms: statistics.median(p["sampling"]["samples_per_second"] for a in arms for p in a["per_seed"])  # noqa: E731
        speed = sps(charts) / sps([fm])
        fd = lambda a: a["summary"]["scores"]["fd"]["mean"]  # noqa: E731
        best_arm = min(charts, key=fd)
        rows.append(_row("05_mnist", "book", "On MNIST a chart samples far faster than flow matching",
                         "samples per second (median over charts vs flow matching); best FD of each",
                         f"×{speed:.0f}; FD best chart {fd(best_arm):.3g} vs flow matching {fd(fm):.3g}",
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
