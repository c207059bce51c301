"""Chapter 5's diagnosis of the charts, as the notebook shows it: table rows, column headers and the
computed sentences (``chartlib.chapters.mnist_diagnosis`` measures; nothing here is typed in).

The rows and sentences read ``Result`` objects; the summary's claim on the noise level is in
``chartlib.report.claims.mnist``."""
from __future__ import annotations

import statistics

from chartlib.chapters.mnist import FLOW
from chartlib.measure.scores import seed_values
from chartlib.runs.arms import Arm, Result

from .format import number, seeds_pm

FILLS = 0.9     # a latent set "fills" the prior when its two-NN dimension is at least this share of the prior's


def _diagnosed(result: Result) -> list[Arm]:
    return [a for a in result.arms.values() if a.extra["kind"] == "chart" and "diagnosis" in a.per_seed[0]]


def _values(arm: Arm, *path: str) -> list[float]:
    return seed_values(arm.per_seed, "diagnosis", *path)


def _mean(arm: Arm, *path: str) -> float:
    return statistics.fmean(_values(arm, *path))


def sources(result: Result) -> list[str]:
    """The keys of ``decoded_from`` in the order of ever closer fits: prior, Gaussian fit, the mixtures
    by size, the training latents."""
    arms = _diagnosed(result)
    if not arms:
        return []
    keys = arms[0].per_seed[0]["diagnosis"]["decoded_from"]
    mixtures = sorted((k for k in keys if k.startswith("mixture_")), key=lambda k: int(k.split("_")[1]))
    return ["prior", "gaussian_fit", *mixtures, "train_latents"]


SOURCE_LABELS = {"prior": "prior N(0, I)", "gaussian_fit": "Gaussian fit", "train_latents": "training latents"}


def source_label(key: str) -> str:
    """A ``decoded_from`` key for people: ``mixture_10`` -> "mixture of 10"."""
    return SOURCE_LABELS.get(key) or f"mixture of {key.split('_')[1]}"


DIMENSION_COLUMNS = {"arm": "chart", "latent": "two-NN, held-out latents", "prior": "two-NN, prior samples",
                     "ratio": "latents / prior"}


def dimension_rows(result: Result) -> list[dict]:
    """Per chart: the two-NN dimension of its held-out latents and of as many prior samples, mean ± sd
    over seeds, and their ratio."""
    rows = []
    for arm in _diagnosed(result):
        lat, pri = _values(arm, "latent_two_nn"), _values(arm, "prior_two_nn")
        rows.append({"arm": arm.label, "latent": seeds_pm(lat), "prior": seeds_pm(pri),
                     "ratio": seeds_pm([a / b for a, b in zip(lat, pri)])})
    return rows


def dimension_sentence(result: Result) -> str:
    """From which latent dimension on the latent set stops filling the prior, against MNIST's own
    dimension (computed)."""
    arms = _diagnosed(result)
    if not arms:
        return "The diagnosis was not run (``diagnosis=False``, or no chart was trained)."
    mnist = result.measured["intrinsic"]["pixels"]["test"]["estimate"]
    parts = []
    for enc in sorted({a.extra["encoding"] for a in arms}):
        mine = sorted((a for a in arms if a.extra["encoding"] == enc), key=lambda a: a.extra["latent_dim"])
        ratios = {a.extra["latent_dim"]: _mean(a, "latent_two_nn") / _mean(a, "prior_two_nn") for a in mine}
        short = [d for d, r in ratios.items() if r < FILLS]
        highest = max(_mean(a, "latent_two_nn") for a in mine)
        where = (f"from {short[0]}-D on their held-out latents are thinner than the prior (two-NN dimension below "
                 f"{FILLS:.0%} of the prior samples')" if short else
                 "at every latent dimension trained their held-out latents are about as thick as the prior")
        parts.append(f"{enc} charts: {where}, and the latents' dimension never exceeds {highest:.1f}")
    return ("**Do the latents fill the prior?** " + "; ".join(parts) +
            f". MNIST's own two-NN dimension is {mnist:.1f} in pixels.")


def decoded_columns(result: Result) -> dict:
    return {"arm": "chart", **{k: f"FD from {source_label(k)}" for k in sources(result)},
            "closed": "gap closed by the best fit"}


def _closed(arm: Arm, key: str) -> float | None:
    """Share of the gap between decoding prior samples and decoding training latents that decoding ``key``
    closes (mean over the seeds that have a gap): 0 = no better than the prior, 1 = as good as the
    training latents; None when in no seed the training latents decode better than the prior."""
    shares = []
    for p in arm.per_seed:
        fd = p["diagnosis"]["decoded_from"]
        gap = fd["prior"] - fd["train_latents"]
        if gap > 0:
            shares.append((fd["prior"] - fd[key]) / gap)
    return statistics.fmean(shares) if shares else None


def _has_gap(arm: Arm) -> bool:
    """Whether the chart's training latents decode better than its prior samples in some seed."""
    return any(p["diagnosis"]["decoded_from"]["prior"] > p["diagnosis"]["decoded_from"]["train_latents"]
               for p in arm.per_seed)


def _with_gap(arms: list[Arm]) -> list[Arm]:
    """The charts that have a gap for a fitted law to close."""
    return [a for a in arms if _has_gap(a)]


def _best_fit(arm: Arm, fits: list[str]) -> str:
    return max(fits, key=lambda k: _closed(arm, k))


def decoded_rows(result: Result) -> list[dict]:
    """Per chart: FD of its decoder fed from each source (mean ± sd over seeds), and the share of the
    prior-to-training-latents gap that the best fitted law closes."""
    keys, rows = sources(result), []
    fits = keys[1:-1]
    for arm in _diagnosed(result):
        row = {"arm": arm.label, **{k: seeds_pm(_values(arm, "decoded_from", k)) for k in keys}}
        if not fits or not _has_gap(arm):
            row["closed"] = "no gap" if fits else ""
        else:
            best = _best_fit(arm, fits)
            row["closed"] = f"{_closed(arm, best):.0%} ({source_label(best)})"
        rows.append(row)
    return rows


def decoded_sentence(result: Result) -> str:
    """How much of the gap each step closes, over all charts (medians), and what is left (computed)."""
    arms, keys = _diagnosed(result), sources(result)
    if not arms:
        return ""
    gapped = _with_gap(arms)
    left = [_mean(a, "decoded_from", "train_latents") / statistics.fmean(
        seed_values(a.per_seed, "reconstruction", "scores", "fd")) for a in arms]
    text = ("**Decoder or latent law?** Take the gap between a chart's samples (decoded prior noise) and its "
            "decodes of training latents as 100 %. ")
    if gapped:
        parts = [f"a {source_label(k)} closes {statistics.median(_closed(a, k) for a in gapped):.0%}"
                 for k in keys[1:-1]]
        text += f"Over the {len(gapped)} charts that have such a gap (median), " + ", ".join(parts) + "."
    if len(gapped) < len(arms):
        text += (f" In {len(arms) - len(gapped)} of {len(arms)} charts the prior's samples already score as well as "
                 "the decoded training latents or better, so there is no gap for a law to close.")
    return text + (f" Decoding training latents scores {statistics.median(left):.2f}× the FD of the held-out "
                   "reconstructions (median over all charts): what separates those two is the decoder's.")


def mixture_rows(result: Result) -> list[dict]:
    """The two-stage arm (not the note's method): each chart sampled from its largest fitted mixture,
    against its own samples and flow matching; FD mean ± sd over seeds."""
    rows = []
    for arm in _diagnosed(result):
        if not arm.per_seed[0]["diagnosis"]["mixture_prior"]:
            continue
        k = arm.per_seed[0]["diagnosis"]["mixture_prior"]["components"]
        rows.append({"arm": arm.label, "prior": seeds_pm(seed_values(arm.per_seed, "scores", "fd")),
                     "mixture": seeds_pm(_values(arm, "mixture_prior", "scores", "fd")),
                     "confidence": seeds_pm(_values(arm, "mixture_prior", "scores", "confidence")),
                     "class_kl": seeds_pm(_values(arm, "mixture_prior", "scores", "class_kl")), "components": k})
    return rows


MIXTURE_COLUMNS = {"arm": "chart", "components": "mixture components", "prior": "FD, prior N(0, I) ↓",
                   "mixture": "FD, fitted mixture ↓", "class_kl": "class KL ↓ (mixture)",
                   "confidence": "confidence (mixture)"}


def mixture_sentence(result: Result) -> str:
    """The best two-stage chart against flow matching (computed)."""
    rows = [a for a in _diagnosed(result) if a.per_seed[0]["diagnosis"]["mixture_prior"]]
    if not rows:
        return ""
    best = min(rows, key=lambda a: _mean(a, "mixture_prior", "scores", "fd"))
    text = (f"**A two-stage chart (not the note's method).** Sampled from a Gaussian mixture fitted to its "
            f"training latents, the best chart ({best.label}) scores FD "
            f"{number(_mean(best, 'mixture_prior', 'scores', 'fd'))}, against "
            f"{number(statistics.fmean(seed_values(best.per_seed, 'scores', 'fd')))} from the prior")
    if FLOW in result.arms:
        fm = statistics.fmean(seed_values(result.arms[FLOW].per_seed, "scores", "fd"))
        text += f" and {number(fm)} for flow matching"
    return text + ". It still draws a digit with one decoder call, plus one draw from the mixture."


PLACEMENT_COLUMNS = {"arm": "chart", "queries": "latents", "distance": "median distance to nearest training latent",
                     "share": "mean label share of nearest k", "rho_distance": "ρ(distance, confidence)",
                     "rho_share": "ρ(label share, confidence)"}


def placement_rows(result: Result) -> list[dict]:
    """Per chart, for prior samples and for held-out latents: where they sit among the training latents
    and how that ranks with the classifier's confidence (mean ± sd over seeds)."""
    rows = []
    for arm in _diagnosed(result):
        for where, name in (("prior", "prior samples"), ("held_out", "held-out digits")):
            rows.append({"arm": arm.label, "queries": name,
                         "distance": seeds_pm(_values(arm, "placement", where, "median_distance")),
                         "share": seeds_pm(_values(arm, "placement", where, "mean_share")),
                         "rho_distance": seeds_pm(_values(arm, "placement", where, "rho_distance_confidence")),
                         "rho_share": seeds_pm(_values(arm, "placement", where, "rho_share_confidence"))})
    return rows


def placement_sentence(result: Result) -> str:
    """Holes between latents, or places where classes meet: which the numbers support (computed, over
    all charts: medians)."""
    arms = _diagnosed(result)
    if not arms:
        return ""

    def median(where, key):
        return statistics.median(_mean(a, "placement", where, key) for a in arms)

    far = median("prior", "median_distance") / median("held_out", "median_distance")
    share_p, share_h = median("prior", "mean_share"), median("held_out", "mean_share")
    rho_d, rho_s = median("prior", "rho_distance_confidence"), median("prior", "rho_share_confidence")
    k = arms[0].per_seed[0]["diagnosis"]["placement"]["prior"]["k"]
    verdict = ("class boundaries: the label share ranks the classifier's confidence better than the distance does"
               if abs(rho_s) > abs(rho_d) else
               "holes: the distance to the nearest training latent ranks the classifier's confidence better than "
               "the label share does")
    return (f"**Where the bad samples come from.** Over the {len(arms)} charts (medians), a prior sample lies "
            f"{far:.2f}× as far from its nearest training latent as a held-out digit's latent does, and "
            f"{share_p:.0%} of its {k} nearest training latents carry their most common digit, against "
            f"{share_h:.0%} for a held-out latent. Across prior samples the classifier's confidence in the decoded "
            f"digit has rank correlation {rho_d:+.2f} with the distance and {rho_s:+.2f} with the label share. "
            f"The numbers point to {verdict}.")


def conclusion(result: Result) -> str:
    """The diagnosis in one paragraph, each clause chosen by the numbers (computed): whose the gap is
    (the latent law's when fitted laws close at least half of it, over the charts' median), whether the
    latents are thinner than the prior, and holes against class boundaries."""
    arms, keys = _diagnosed(result), sources(result)
    fits, gapped = keys[1:-1], _with_gap(_diagnosed(result))
    if not arms or not fits or not gapped:
        return ""
    closed = statistics.median(_closed(a, _best_fit(a, fits)) for a in gapped)
    thin = sum(_mean(a, "latent_two_nn") < FILLS * _mean(a, "prior_two_nn") for a in arms)
    rho_d = statistics.median(_mean(a, "placement", "prior", "rho_distance_confidence") for a in arms)
    rho_s = statistics.median(_mean(a, "placement", "prior", "rho_share_confidence") for a in arms)
    if closed >= 0.5:
        text = (f"**What limits the samples.** Mostly the latent law: the best fitted law closes {closed:.0%} of "
                f"the gap between a chart's samples and its decodes of training latents (median over the {len(gapped)} "
                "charts with a gap), "
                "with the decoder unchanged.")
    else:
        text = (f"**What limits the samples.** Mostly the decoder: the best fitted law closes only {closed:.0%} of "
                f"the gap (median over the {len(gapped)} charts with a gap), so a better latent law would not "
                "bring the samples much closer to the reconstructions.")
    if thin * 2 > len(arms):
        text += (f" In {thin} of {len(arms)} charts the held-out latents form a thinner set than the prior (their "
                 "two-NN dimension is lower): the space-filling problem of chapters 3 and 4, on real data.")
    else:
        text += (f" Only {thin} of {len(arms)} charts have held-out latents thinner than the prior, so the "
                 "space-filling problem of chapters 3 and 4 is not what the numbers point to.")
    where = "where digit classes meet" if abs(rho_s) > abs(rho_d) else "in holes far from every training latent"
    return text + f" The poorly drawn digits come from prior samples that land {where}."
