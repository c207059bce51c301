"""Chapter 5, MNIST: what the notebook shows of a ``chapters.mnist.run`` result: table rows and
their column headers, the computed sentences, and the runs each figure draws (every number is
read from the result, nothing is typed in)."""
from __future__ import annotations

import statistics

import torch

from chartlib.chapters.mnist import FLOW, FLOW_VARIANTS, GAP_BATCH, arm_key
from chartlib.core.data import seeded
from chartlib.datasets.mnist import MnistDigits
from chartlib.measure.scores import seed_values
from chartlib.runs.arms import Arm, Result

from .claims.mnist import best_dimensions
from .format import number, seeds_pm


def _seeds(arm: Arm, *path: str) -> list[float]:
    return seed_values(arm.per_seed, *path)


FLOW_COLUMNS = {"arm": "flow-matching variant", "prediction": "network predicts", "loss": "loss on",
                "times": "training times t", "fd": "FD ↓", "confidence": "confidence", "per_seed": "FD per seed"}
CHART_COLUMNS = {"arm": "chart", "fd": "FD samples ↓", "recon_fd": "FD reconstructions ↓",
                 "gap": "samples / reconstructions", "class_kl": "class KL ↓", "confidence": "confidence",
                 "latent_energy": "latent energy distance to prior", "mean_sigma": "mean σ"}
COST_COLUMNS = {"arm": "arm", "nfe": "network calls per sample", "sps": "samples per second",
                "train": "training time per seed (s)"}


def flow_rows(result: Result) -> list[dict]:
    """One row per flow-matching variant: its parameterisation and its scores, mean ± sd over seeds."""
    rows = []
    for arm in result.arms.values():
        if arm.extra["kind"] != "flow":
            continue
        _, prediction, loss, mean = FLOW_VARIANTS[arm.extra["variant"]]
        fds = _seeds(arm, "scores", "fd")
        rows.append({"arm": arm.label, "prediction": prediction, "loss": loss,
                     "times": "uniform" if mean is None else f"logit-normal, mean {mean:g}",
                     "fd": seeds_pm(fds), "confidence": seeds_pm(_seeds(arm, "scores", "confidence")),
                     "per_seed": ", ".join(f"{f:.0f}" for f in fds)})
    return rows


def chart_rows(result: Result) -> list[dict]:
    """One row per chart: samples and reconstructions scored, their ratio, the latent fit; mean ± sd over seeds."""
    rows = []
    for arm in result.arms.values():
        if arm.extra["kind"] != "chart":
            continue
        fd, rec = _seeds(arm, "scores", "fd"), _seeds(arm, "reconstruction", "scores", "fd")
        sigma = [p["mean_sigma"] for p in arm.per_seed if "mean_sigma" in p]
        gap = [a / b for a, b in zip(fd, rec)]
        rows.append({"arm": arm.label, "fd": seeds_pm(fd), "recon_fd": seeds_pm(rec), "gap": seeds_pm(gap),
                     "class_kl": seeds_pm(_seeds(arm, "scores", "class_kl")),
                     "confidence": seeds_pm(_seeds(arm, "scores", "confidence")),
                     "latent_energy": seeds_pm(_seeds(arm, "latent_energy")),
                     "mean_sigma": seeds_pm(sigma) if sigma else ""})
    return rows


def gap_rows(result: Result) -> list[dict]:
    """The gap study: the chart it varies (first seed) and each change, with the stochastic chart of
    the same dimension beside them; samples against reconstructions."""
    study = [a for a in result.arms.values() if a.extra["kind"] == "gap"]
    if not study:
        return []
    d = study[0].extra["latent_dim"]
    rows = []
    for key in (arm_key(d, "deterministic"), *(a.key for a in study), arm_key(d, "stochastic")):
        if key not in result.arms:
            continue
        arm = result.arms[key]
        p = arm.per_seed[0]
        rows.append({"arm": arm.label, "seed": p["seed"], "fd": p["scores"]["fd"],
                     "recon_fd": p["reconstruction"]["scores"]["fd"],
                     "gap": p["scores"]["fd"] / p["reconstruction"]["scores"]["fd"],
                     "latent_energy": p["latent_energy"], "recon_error": p["recon_error"]})
    return rows


GAP_COLUMNS = {"arm": "chart", "seed": "seed", "fd": "FD samples ↓", "recon_fd": "FD reconstructions ↓",
               "gap": "samples / reconstructions", "latent_energy": "latent energy distance to prior",
               "recon_error": "reconstruction error"}


def cost_rows(result: Result) -> list[dict]:
    """Per arm: network evaluations per sample, samples per second and training seconds (median over seeds)."""
    return [{"arm": arm.label, "nfe": arm.per_seed[0]["sampling"]["network_evaluations"],
             "sps": statistics.median(_seeds(arm, "sampling", "samples_per_second")),
             "train": statistics.median(_seeds(arm, "train_seconds"))} for arm in result.arms.values()]


def floor_sentence(result: Result) -> str:
    """Real held-out digits scored like an arm: what a perfect model would get (computed)."""
    sc = result.measured["floor"]["scores"]
    n = result.measured['floor']['n_samples']
    return (f"**Real digits.** {n} real held-out digits score FD {number(sc['fd'])}, "
            f"class KL {number(sc['class_kl'], 2)}, confidence {sc['confidence']:.3f}: what a perfect model would get.")


def shown_digits(result: Result) -> torch.Tensor:
    """The real training digits shown beside the sample grids, (n_show, 784): the ones the charts
    reconstruct in their frames, or a fresh draw if no chart was trained."""
    for arm in result.arms.values():
        if "data" in arm.runs[0].frames:
            return arm.runs[0].frames["data"][0]
    n = next(iter(result.arms.values())).runs[0].frames["samples"].shape[1]
    return MnistDigits().sample(n, seeded(1))


GRID_FLOWS = (FLOW, "flow-velocity")     # the flow-matching variants shown in the training-step grid
GRID_DIMS = (12, 32, 128)                # the charts shown there: the note's three latent dimensions


def grid_runs(result: Result) -> dict:
    """The first seed's run of flow matching (clean and velocity prediction) and of the note's three
    chart sizes, by a short panel title, for the sample grid over training (the other arms are in
    the explorer and the final grids)."""
    def title(a: Arm) -> str:
        if a.extra["kind"] == "flow":
            return "velocity prediction" if a.key == "flow-velocity" else "flow matching"
        return f"{a.extra['latent_dim']}-D, {a.extra['encoding']}"

    def shown(a: Arm) -> bool:
        chart = a.extra["kind"] == "chart" and a.extra["latent_dim"] in GRID_DIMS
        return chart or a.extra.get("variant") in GRID_FLOWS

    return {title(a): a.runs[0] for a in result.arms.values() if shown(a)}


def final_runs(result: Result, encoding: str) -> dict:
    """Every chart of one encoding (first seed), by latent dimension, holding only its last frame:
    the end of training at every latent dimension for one static grid."""
    from types import SimpleNamespace
    return {f"{a.extra['latent_dim']}-D": SimpleNamespace(steps=a.runs[0].steps[-1:],
                                                          frames={"samples": a.runs[0].frames["samples"][-1:]})
            for a in result.arms.values() if a.extra["kind"] == "chart" and a.extra["encoding"] == encoding}


def explorer_entries(result: Result) -> list:
    """(facets, run) for ``chartlib.report.explorer.explore``: model (a flow-matching variant, chart, or a
    gap-study chart), latent dim, encoding and seed of every run."""
    def model(a: Arm) -> str:
        return {"flow": a.label, "chart": "chart"}.get(a.extra["kind"], f"chart, gap study ({a.extra.get('change')})")
    return [({"model": model(a), "latent dim": a.extra.get("latent_dim", "-"),
              "encoding": a.extra.get("encoding", "-"), "seed": p["seed"]}, r)
            for a in result.arms.values() for p, r in zip(a.per_seed, a.runs)]


def _median_sps(arms) -> float:
    return statistics.median(p["sampling"]["samples_per_second"] for a in arms for p in a.per_seed)


def cost_sentence(result: Result) -> str:
    """Sampling cost and sample quality of flow matching against the charts, in words (computed)."""
    charts = [a for a in result.arms.values() if a.extra["kind"] == "chart"]
    if FLOW not in result.arms or not charts:
        return "Comparing cost and quality needs both flow matching and at least one chart."
    fm_arm = result.arms[FLOW]
    calls = fm_arm.per_seed[0]["sampling"]["network_evaluations"]
    fm, chart_sps = _median_sps([fm_arm]), _median_sps(charts)

    def fd(arm):
        return statistics.fmean(_seeds(arm, "scores", "fd"))

    best = min(charts, key=fd)
    quality = ("better" if fd(fm_arm) < fd(best) else "worse")
    return (f"**Cost and quality.** A chart draws a digit with one decoder call, flow matching with "
            f"{calls} network calls. Measured on {result.measured['device']}: "
            f"{chart_sps:,.0f} chart samples per second (median over the charts) against "
            f"{fm:,.0f} for flow matching, {chart_sps / fm:.0f}× faster. In quality, flow matching's "
            f"samples score FD {fd(fm_arm):.0f}, {quality} than the best chart's ({best.label}, {fd(best):.0f}).")


def diagnostic_sentence(result: Result) -> str:
    """How well each chart's latents fill the prior, deterministic against stochastic (computed)."""
    charts = {(a.extra["latent_dim"], a.extra["encoding"]): statistics.fmean(p["latent_energy"] for p in a.per_seed)
              for a in result.arms.values() if a.extra["kind"] == "chart"}
    dims = sorted({d for d, e in charts if (d, "deterministic") in charts and (d, "stochastic") in charts})
    if not dims:
        return "Comparing the encodings needs both of them trained at some latent dimension."
    parts = [f"{d}-D: {number(charts[(d, 'deterministic')])} deterministic"
             f" vs {number(charts[(d, 'stochastic')])} stochastic"
             for d in dims]
    return "**Measured.** Energy distance between held-out latents and the prior, " + "; ".join(parts) + "."


def flow_sentence(result: Result) -> str:
    """The flow-matching ablation in words: the chapter's variant against velocity prediction (computed)."""
    flows = {a.key: a for a in result.arms.values() if a.extra["kind"] == "flow"}
    if FLOW not in flows or "flow-velocity" not in flows:
        return "Comparing the parameterisations needs both the chapter's flow matching and velocity prediction."
    new, old = (statistics.fmean(_seeds(flows[k], "scores", "fd")) for k in (FLOW, "flow-velocity"))
    best = min(flows.values(), key=lambda a: statistics.fmean(_seeds(a, "scores", "fd")))
    return (f"**Measured.** Predicting the clean digit brings flow matching's FD from {old:.0f} (velocity "
            f"prediction) to {new:.0f}, {old / new:.1f}× lower, with the same network, steps and sampler; "
            f"the best variant here is *{best.label}*.")


INTRINSIC_COLUMNS = {"space": "space", "digits": "digits", "estimate": "two-NN dimension", "spread": "uncertainty"}


def intrinsic_rows(result: Result) -> list[dict]:
    """MNIST's two-NN dimension per space: on all test digits, then per training-subset size."""
    rows = []
    for space in ("pixels", "features"):
        est = result.measured["intrinsic"][space]
        t = est["test"]
        rows.append({"space": f"{space} ({est['dim']})", "digits": f"all {t['n_used']} test digits",
                     "estimate": t["estimate"], "spread": f"90 % interval {t['low']:.2f}–{t['high']:.2f}"})
        for r in est["train"]:
            rows.append({"space": f"{space} ({est['dim']})",
                         "digits": f"{r['n_points']} training digits × {r['repeats']}",
                         "estimate": r["median"], "spread": "" if r["sd"] is None else f"sd {r['sd']:.2f}"})
    return rows


def intrinsic_sentence(result: Result) -> str:
    """Where the best latent dimension sits against MNIST's intrinsic dimension (computed)."""
    pixels = result.measured["intrinsic"]["pixels"]["test"]["estimate"]
    features = result.measured["intrinsic"]["features"]["test"]["estimate"]
    text = (f"**Intrinsic dimension.** On all 10,000 test digits the two-NN estimate is {pixels:.1f} in pixels and "
            f"{features:.1f} in the classifier's features; smaller samples give somewhat lower values (table below).")
    fd = {(a.extra["latent_dim"], a.extra["encoding"]): a for a in result.arms.values() if a.extra["kind"] == "chart"}
    means = {k: [statistics.fmean(_seeds(a, "scores", "fd"))] for k, a in fd.items()}
    best = best_dimensions(means)
    if best and best[0]:
        text += (" Lowest mean FD over seeds: " + ", ".join(f"{e} charts at {d}-D" for e, d in best[0].items()) + ".")
    return text


def scale_sentence(result: Result) -> str:
    """MNIST's dimension against scale in words (computed)."""
    scale = result.measured["scale"]
    ranks, noise = scale["ranks"], scale["noise"]
    return (f"**Dimension against scale.** On {scale['n_points']} test digits the Gride estimate runs from "
            f"{ranks[0]['dimension']:.1f} at k = {ranks[0]['k']} to {ranks[-1]['dimension']:.1f} at k = "
            f"{ranks[-1]['k']}; with pixel noise of σ = {noise[-1]['sigma']:g} added, the two-NN estimate is "
            f"{noise[-1]['dimension']:.1f} against {noise[0]['dimension']:.1f} at σ = {noise[0]['sigma']:g}.")


def gap_sentence(result: Result) -> str:
    """What the gap study shows, in words (computed)."""
    rows = gap_rows(result)
    if len(rows) < 2:
        return ("The gap study was not run: the ci profile leaves it out, and it needs the deterministic "
                "encoding; the full profile runs it.")
    base = rows[0]
    parts = [f"{r['arm']}: samples {r['fd']:.0f}, reconstructions {r['recon_fd']:.0f} (×{r['gap']:.1f})" for r in rows]
    return "**Measured.** " + "; ".join(parts) + f". The chart it varies scores ×{base['gap']:.1f}."


def batch_sentence(result: Result) -> str:
    """Whether a larger drift batch changes the samples-to-reconstructions ratio of the gap study's chart,
    measured against that chart's own spread of the ratio over seeds (computed)."""
    if "gap-batch" not in result.arms:
        return ""
    arm = result.arms["gap-batch"]
    d = arm.extra["latent_dim"]
    base = result.arms[arm_key(d, "deterministic")]
    ratios = [a / b for a, b in zip(_seeds(base, "scores", "fd"), _seeds(base, "reconstruction", "scores", "fd"))]
    p = arm.per_seed[0]
    mine = p["scores"]["fd"] / p["reconstruction"]["scores"]["fd"]
    first = ratios[[q["seed"] for q in base.per_seed].index(p["seed"])]
    text = (f"**A larger drift batch.** With {GAP_BATCH}× the batch ({arm.label}), so that the drift field sees "
            f"{GAP_BATCH}× the samples per step, the {d}-D chart's samples score ×{mine:.2f} its reconstructions, "
            f"against ×{first:.2f} at the chapter's batch (same seed)")
    if len(ratios) < 2:
        return text + "; with one seed there is no spread to judge the difference by."
    sd = statistics.stdev(ratios)
    inside = abs(mine - first) < sd
    return text + (f"; the ratio varies by {sd:.2f} (sd) between seeds, so the difference is "
                   + ("inside the seed spread: the drift's sample size does not limit the fit here."
                      if inside else "outside the seed spread."))


def record(result: Result, claims: list[dict]) -> dict:
    """What the chapter writes to its metrics JSON: the result and the note's claims with verdicts."""
    return {**result.record(), "claims": claims}
