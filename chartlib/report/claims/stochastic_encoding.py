"""Chapter 4's claims: fibers keep samples on the surface; the critic's failure setting."""
from __future__ import annotations

import statistics

from .space_filling import OFF, off
from .verdicts import count_verdict, per_seed, row

CRITIC = 5.0           # "critic failure": off-surface share at least this many times the working critic's


def claims(m: dict) -> list[dict]:
    arms, rows = m["arms"], []
    det = {p["seed"]: off(p, "samples") for p in arms["deterministic"]["per_seed"]}
    sto = {p["seed"]: off(p, "samples") for p in arms["kernel"]["per_seed"]}
    common = sorted(set(det) & set(sto))
    lower = sum(sto[s] < det[s] for s in common)
    dims = arms["kernel"]["summary"]["latent_dimension"]["mean"]
    rows.append(row("04_stochastic_encoding", "note", "Stochastic encoding (fibers) keeps samples on the surface",
                    f"share of samples farther than {OFF} from the surface, stochastic (kernel field) vs "
                    "deterministic, same seeds",
                    f"{per_seed([sto[s] for s in common])} vs {per_seed([det[s] for s in common])}; latent "
                     f"dimension {dims:.2f}", "reproduced if lower in every seed, partly if in some",
                     count_verdict(lower, len(common)), keys=("arms.kernel", "arms.deterministic"),
                     seeds=tuple(common)))
    critic = [off(p, "samples") for p in arms["critic"]["per_seed"]]
    if "failing_critic" not in arms:
        rows.append(row("04_stochastic_encoding", "book", "The score critic fails when its noise is too small and it "
                         "trains too little", "not measured", "", "", "not tested"))
        return rows
    failing = [off(p, "samples") for p in arms["failing_critic"]["per_seed"]]
    bad = sum(f >= CRITIC * statistics.fmean(critic) for f in failing)
    rows.append(row("04_stochastic_encoding", "book", "The score critic fails when its noise is too small and it "
                     "trains too little", f"share of samples farther than {OFF} from the surface, "
                     f"{arms['failing_critic']['label'].removeprefix('stochastic, ')} vs the chapter's critic",
                     f"{per_seed(failing)} vs {per_seed(critic)}",
                     f"reproduced if at least {CRITIC:g}× the working critic's mean in every seed tried",
                     count_verdict(bad, len(failing)), keys=("arms.failing_critic", "arms.critic")))
    return rows


