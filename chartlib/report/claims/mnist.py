"""The MNIST chapter's claims: the note's six, each rule applied to every training seed, and the
book's own (the flow-matching fix, the best latent dimension against MNIST's intrinsic dimension,
sampling cost).  The summary reaches them through ``chartlib.report.claims.claims``."""
from __future__ import annotations

import statistics

from chartlib.chapters.mnist import ENCODINGS

from ..format import mean_sd, number
from .verdicts import count_verdict, per_seed, row, verdict_word

CLEAR_MARGIN = 1.2    # "visibly worse": FD at least 20 % above the other arm's
BREAKDOWN = 2.0       # "breaks down": FD at least twice the same encoding's 12-D value
MUCH_WORSE = 1.5      # "much worse": FD at least 1.5 times the other encoding's


def fd_by_arm(record: dict) -> dict[tuple[int, str], list[float]]:
    """FD of every chart arm of the MNIST metrics record, by (latent dim, encoding): one value per
    training seed, in seed order (so the i-th values of two arms share a seed)."""
    return {(a["latent_dim"], a["encoding"]): _per_seed_fd(a) for a in record["arms"].values() if a["kind"] == "chart"}


def _note_rules(fd: dict[tuple[int, str], float], low: int, mid: int, high: int, show=None) -> list[dict]:
    """The note's MNIST claims on one FD per arm: claim, rule, evidence, reproduced (bool, or None
    when an arm the rule needs is missing) and pairs, the comparisons the rule makes: (arm a, arm b,
    factor) for "FD of a against factor x FD of b".  The note compared 12-, 32- and 128-D charts, so
    its claims are read on those dimensions only; the rest of the curve is the book's own claim.
    ``show(d, e)``: how the evidence writes an arm's FD (default: the number)."""
    dims = [d for d in sorted({d for d, _ in fd}) if d in (low, mid, high)]
    encs = [e for e in ENCODINGS if any(k[1] == e for k in fd)]

    def have(*keys):
        return all(k in fd for k in keys)

    def f(d, e):
        return show(d, e) if show else number(fd[(d, e)])

    claims = []
    ok = [all(fd[(low, e)] < fd[(d, e)] for d in dims if d != low and (d, e) in fd) for e in encs if (low, e) in fd]
    claims.append({
        "claim": f"{low}-D latents give the best samples",
        "rule": f"for each encoding, the {low}-D chart has a lower FD than the {mid}- and {high}-D ones",
        "evidence": "; ".join(f"{e}: " + ", ".join(f"{d}-D {f(d, e)}" for d in dims if (d, e) in fd) for e in encs),
        "reproduced": (all(ok) if ok and len(dims) > 1 else None),
        "pairs": [((d, e), (low, e), 1.0) for e in encs for d in dims if d != low and have((d, e), (low, e))]})

    def worse_than_low(d: int, factor: float, claim: str, every_encoding: bool) -> dict:
        """FD at d at least ``factor`` times the same encoding's FD at ``low``; ``every_encoding``:
        untested unless both encodings were trained."""
        pairs = [e for e in encs if have((low, e), (d, e))]
        ok = [fd[(d, e)] >= factor * fd[(low, e)] for e in pairs]
        tested = len(ok) == len(ENCODINGS) if every_encoding else bool(ok)
        return {"claim": claim, "rule": f"for each encoding, FD at {d}-D ≥ {factor:g} × FD at {low}-D",
                "evidence": "; ".join(f"{e}: {f(d, e)} vs {f(low, e)} (×{fd[(d, e)] / fd[(low, e)]:.2f})"
                                      for e in pairs),
                "reproduced": all(ok) if tested else None, "pairs": [((d, e), (low, e), factor) for e in pairs]}

    claims.append(worse_than_low(mid, CLEAR_MARGIN, f"{mid}-D samples are visibly worse than {low}-D", False))
    claims.append(worse_than_low(high, BREAKDOWN, f"at {high}-D both encodings break down", True))
    det, sto = (high, "deterministic"), (high, "stochastic")
    claims.append({
        "claim": f"at {high}-D the deterministic chart fails much worse than the stochastic one",
        "rule": f"FD deterministic ≥ {MUCH_WORSE:g} × FD stochastic at {high}-D",
        "evidence": (f"{f(*det)} vs {f(*sto)} (×{fd[det] / fd[sto]:.2f})" if have(det, sto) else "not trained"),
        "reproduced": (fd[det] >= MUCH_WORSE * fd[sto]) if have(det, sto) else None,
        "pairs": [(det, sto, MUCH_WORSE)] if have(det, sto) else []})
    above = [d for d in dims if d > low and have((d, "deterministic"), (d, "stochastic"))]
    claims.append({
        "claim": "stochastic encoding mitigates the failure at larger latent dimensions",
        "rule": f"at {mid}-D and {high}-D, FD stochastic < FD deterministic",
        "evidence": "; ".join(f"{d}-D: {f(d, 'stochastic')} vs {f(d, 'deterministic')}" for d in above),
        "reproduced": all(fd[(d, "stochastic")] < fd[(d, "deterministic")] for d in above) if above else None,
        "pairs": [((d, "deterministic"), (d, "stochastic"), 1.0) for d in above]})
    pair = ((low, "deterministic"), (low, "stochastic"))
    claims.append({
        "claim": f"at the matched dimension ({low}-D) deterministic encoding gives the better samples",
        "rule": f"FD deterministic < FD stochastic at {low}-D",
        "evidence": (f"{f(*pair[0])} vs {f(*pair[1])}" if have(*pair) else "not trained"),
        "reproduced": (fd[pair[0]] < fd[pair[1]]) if have(*pair) else None,
        "pairs": [(pair[1], pair[0], 1.0)] if have(*pair) else []})
    return claims


def inside_spread(fd: dict[tuple[int, str], list[float]], pairs: list[tuple]) -> list[tuple]:
    """The comparisons of ``pairs`` (arm a, arm b, factor) whose difference of means, FD(a) - factor x FD(b),
    is smaller than the larger seed standard deviation of the two sides: differences a change of seed
    could undo.  Needs at least two seeds on both sides (else no spread is known and nothing is returned)."""
    out = []
    for a, b, factor in pairs:
        if min(len(fd[a]), len(fd[b])) < 2:
            continue
        diff = statistics.fmean(fd[a]) - factor * statistics.fmean(fd[b])
        if abs(diff) < max(statistics.stdev(fd[a]), factor * statistics.stdev(fd[b])):
            out.append((a, b, factor))
    return out


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
    for j, c in enumerate(_note_rules(means, low, mid, high, show=lambda d, e: mean_sd(fd[(d, e)], ".4g", ".2g"))):
        outcomes = [rules[j]["reproduced"] for rules in each if rules[j]["reproduced"] is not None]
        held, tested = sum(outcomes), len(outcomes)
        evidence = c["evidence"] if tested else "not trained"
        close = inside_spread(fd, c["pairs"]) if tested else []
        if tested:
            evidence += (f" (mean ± sd over seeds; the rule holds in {held} of {tested} seeds)" if seeds > 1
                         else " (1 seed: no seed spread)")
        word = count_verdict(held, tested)
        if close:
            names = ", ".join(f"{a[0]}-D {a[1]} vs {b[0]}-D {b[1]}" for a, b, _ in close)
            word += f", inside the seed spread ({names})"
        out.append({"claim": c["claim"], "rule": c["rule"], "evidence": evidence, "held": held, "tested": tested,
                    "verdict": word})
    return out


def note_claims(record: dict) -> list[dict]:
    """The note's MNIST claims decided over seeds on the chapter's record (``Result.record()``)."""
    return mnist_note_claims(fd_by_arm(record))


def mnist_claims_sentence(claims: list[dict], profile: str) -> str:
    """A summary of the verdicts, with a caveat for the ci profile (computed)."""
    tested = [c for c in claims if verdict_word(c["verdict"]) != "not tested"]
    yes = [c for c in tested if verdict_word(c["verdict"]) == "reproduced"]
    part = [c for c in tested if verdict_word(c["verdict"]) == "partly"]
    close = [c for c in tested if verdict_word(c["verdict"]) != c["verdict"]]
    text = f"**{len(yes)} of {len(tested)}** tested claims reproduce in every seed of this run"
    if part:
        text += f", {len(part)} in some seeds only"
    if len(tested) < len(claims):
        text += f" ({len(claims) - len(tested)} could not be tested: an arm they need was not trained)"
    text += "."
    if close:
        text += (f" In {len(close)} of them a difference the rule rests on is smaller than the seed-to-seed "
                 "standard deviation, so another seed could turn the verdict.")
    if profile == "ci":
        text += (" This is the ci profile: a few hundred steps of small networks, so the verdicts say "
                 "little about the note; the full profile is the measurement.")
    return text


SCALE_CHANGE = 1.2  # "depends on the scale": the Gride estimate's largest over smallest across neighbour ranks
NOISE_CHANGE = 1.5  # "depends on the noise level": the two-NN estimate's largest over smallest across noise levels


def noise_level_claim(scale: dict) -> dict:
    """The note's remark that a manifold's dimension depends on a pre-chosen noise level, decided on
    MNIST's dimension against scale (``measured["scale"]``): reproduced when the estimate changes by
    ``SCALE_CHANGE`` across neighbour ranks and by ``NOISE_CHANGE`` across added noise, partly when
    by one of them."""
    ranks = [r["dimension"] for r in scale["ranks"]]
    noise = [r["dimension"] for r in scale["noise"]]
    by_rank, by_noise = max(ranks) / min(ranks), max(noise) / min(noise)
    held = (by_rank >= SCALE_CHANGE) + (by_noise >= NOISE_CHANGE)
    k = [r["k"] for r in scale["ranks"]]
    sigma = [r["sigma"] for r in scale["noise"]]
    return row("05_mnist", "note", "A data manifold's dimension depends on the noise level (scale) one chooses",
               f"MNIST's dimension on {scale['n_points']} test digits: Gride at neighbour ranks k = {k[0]}..{k[-1]}; "
               f"two-NN with pixel noise σ = {sigma[0]:g}..{sigma[-1]:g}",
               "Gride " + ", ".join(f"{d:.1f}" for d in ranks) + f" (×{by_rank:.2f}); with noise "
               + ", ".join(f"{d:.1f}" for d in noise) + f" (×{by_noise:.2f})",
               f"reproduced if the estimate changes by ×{SCALE_CHANGE:g} across k and by ×{NOISE_CHANGE:g} across σ "
               "(largest over smallest), partly if by one", count_verdict(held, 2), keys=("scale",))


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


def claims(m: dict) -> list[dict]:
    """Chapter 5's claim rows for the summary."""
    rows = []
    chart_keys = tuple(f"arms.{k}" for k, a in m["arms"].items() if a["kind"] == "chart")
    for c in mnist_note_claims(fd_by_arm(m)):
        rows.append(row("05_mnist", "note", c["claim"],
                        "FD-LeNet of each arm's samples, rule applied per training seed",
                        c["evidence"], c["rule"] + "; reproduced if in every seed, partly if in some", c["verdict"],
                        keys=chart_keys))
    if "scale" in m:
        rows.append(noise_level_claim(m["scale"]))
    arms = m["arms"]
    fm, old = arms.get("flow"), arms.get("flow-velocity")
    if fm and old:
        new_fd, old_fd = _per_seed_fd(fm), _per_seed_fd(old)
        fixed = sum(a * FLOW_FIX <= b for a, b in zip(new_fd, old_fd))
        rows.append(row("05_mnist", "book", "Predicting the clean digit instead of the velocity makes flow matching "
                        "on pixels work",
                        "FD-LeNet of flow matching, clean prediction vs velocity prediction, per seed",
                        f"{per_seed(new_fd, '.0f')} vs {per_seed(old_fd, '.0f')}",
                        f"reproduced if FD ≤ 1/{FLOW_FIX:g} of the velocity prediction's in every seed, "
                        "partly if in some",
                         count_verdict(fixed, min(len(new_fd), len(old_fd))), keys=("arms.flow", "arms.flow-velocity")))
    intrinsic = m.get("intrinsic", {}).get("pixels", {}).get("test", {}).get("estimate")
    best = best_dimensions(fd_by_arm(m))
    if intrinsic and best and best[0]:
        near = sum(all(intrinsic / NEAR_ID <= d <= intrinsic * NEAR_ID for d in b.values()) for b in best)
        rows.append(row("05_mnist", "book", "The best latent dimension lies near MNIST's intrinsic dimension",
                        "latent dimension of lowest FD per encoding and seed; two-NN dimension of the test digits' "
                        "pixels",
                        "; ".join(f"seed {i}: " + ", ".join(f"{e} {d}-D" for e, d in b.items())
                                  for i, b in enumerate(best))
                        + f"; intrinsic {intrinsic:.1f}",
                         f"reproduced if within a factor {NEAR_ID:g} of the intrinsic dimension for both encodings in "
                         f"every seed, partly if in some", count_verdict(near, len(best)),
                         keys=(*chart_keys, "intrinsic.pixels.test")))
    charts = [a for a in arms.values() if a["kind"] == "chart"]
    if fm and charts:
        def sps(arms):
            return statistics.median(p["sampling"]["samples_per_second"] for a in arms for p in a["per_seed"])

        def fd(arm):
            return arm["summary"]["scores"]["fd"]["mean"]

        speed = sps(charts) / sps([fm])
        best_arm = min(charts, key=fd)
        rows.append(row("05_mnist", "book", "On MNIST a chart samples far faster than flow matching",
                         "samples per second (median over charts vs flow matching); best FD of each",
                         f"×{speed:.0f}; FD best chart {number(fd(best_arm))} vs flow matching {number(fd(fm))}",
                         "reproduced if the charts sample faster", "reproduced" if speed > 1 else "not reproduced",
                         keys=(*chart_keys, "arms.flow")))
    return rows


