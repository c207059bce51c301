"""Chapter 2 as the page shows it: table rows and columns, lines for the figures, computed sentences."""
from __future__ import annotations

import statistics

from chartlib.chapters.chart_transport import CHART, DETACHED, FLOW, OFFSET, RELEASED, RELEASED_NO_FLOOR
from chartlib.measure.scores import COLLAPSED
from chartlib.runs.arms import Result

from .format import percent, spread_text

COLUMNS = {"arm": "arm", "seed": "seed", "fractions": "share per mode (left, right)",
           "modes_held": "modes with ≥ 10 %", "far": "share > 4σ from both modes",
           "energy": "energy distance to held-out data", "recon_error": "reconstruction error",
           "latent_energy": "latent energy distance to prior", "train_seconds": "train time (s)"}


def seed_rows(result: Result) -> list[dict]:
    return [{"arm": arm.label, **p} for arm in result.arms.values() for p in arm.per_seed]


def measured_text(result: Result) -> str:
    ct = result.arms[CHART]
    c = ct.summary
    return (
        f"**Measured.** Chart transport holds both modes in {c['both_modes_seeds']} of {c['seeds']} seeds "
        f"(larger-mode share {c['majority']['mean']:.3f} ± {c['majority']['std']:.3f}, energy distance "
        f"{c['energy']['mean']:.4f} ± {c['energy']['std']:.4f}), at the temperature where plain drifting collapsed. "
        f"Energy distance between the data latents and prior samples: "
        + ", ".join(f"{p['latent_energy_start']:.3f} → {p['latent_energy']:.4f}" for p in ct.per_seed)
        + " (fresh encoder → end of training, per seed); for the offset encoder it starts at "
        + ", ".join(f"{p['latent_energy_start']:.2f}" for p in result.arms[OFFSET].per_seed) + ".")


def offset_text(result: Result) -> str:
    off = result.arms[OFFSET].summary
    text = (f"**Measured.** With the offset encoder, {off['collapsed_seeds']} of {off['seeds']} seeds put at least "
            f"{percent(COLLAPSED)} of their samples in one mode (larger-mode share {off['majority']['mean']:.3f}, "
            f"energy distance {off['energy']['mean']:.3f}).")
    if off["collapsed_seeds"] > off["seeds"] / 2:
        text += (" So the coverage comes from choosing a unimodal prior centred where the encoder's latents already "
                 "start, not from the direction of transport alone.")
    else:
        text += " In these runs most seeds covered both modes even from the offset start."
    return text


def majority_lines(result: Result) -> dict[str, list[float]]:
    return {f"{result.arms[k].label} · seed {i}": share for k in (CHART, OFFSET)
            for i, share in enumerate(result.arms[k].extra["majority_over_training"])}


def detached_text(result: Result) -> str:
    d0, c0 = result.arms[DETACHED].per_seed[0], result.arms[CHART].per_seed[0]
    return (f"**Measured (seed 0).** Reconstruction error {d0['recon_error']:.3f} detached vs {c0['recon_error']:.4f} "
            f"with the gradient; latent energy distance to the prior {d0['latent_energy']:.4f} vs "
            f"{c0['latent_energy']:.4f}; share of samples more than 4σ from both modes {d0['far']:.3f} vs "
            f"{c0['far']:.3f}; energy distance to the data {d0['energy']:.4f} vs {c0['energy']:.4f}.")


WEIGHT_COLUMNS = {"lam": "λ", "seeds": "seeds", "majority": "mean larger-mode share",
                  "energy": "mean energy distance to data", "recon": "mean reconstruction error",
                  "latent": "mean latent energy distance to prior"}


def weight_rows(result: Result) -> list[dict]:
    def mean(v, k):
        return sum(p[k] for p in v["per_seed"]) / len(v["per_seed"])

    return [{"lam": lam, "seeds": v["summary"]["seeds"], "majority": v["summary"]["majority"]["mean"],
             "energy": v["summary"]["energy"]["mean"], "recon": mean(v, "recon_error"),
             "latent": mean(v, "latent_energy")} for lam, v in result.measured["weight_sweep"].items()]


COST_COLUMNS = {"method": "method", "energy": "energy distance to data (mean ± sd over seeds)",
                "nfe": "network evaluations per sample", "sps": "samples per second (median of 5, 2000 at a time)"}


def cost_rows(result: Result) -> list[dict]:
    cost = result.measured["sampling_cost"]
    def pm(key):
        return spread_text(result.arms[key].summary["energy"], ".4f")

    return [{"method": "chart transport", "energy": pm(CHART), "nfe": cost["chart"]["network_evaluations"],
             "sps": cost["chart"]["samples_per_second"]},
            {"method": "flow matching", "energy": pm(FLOW), "nfe": cost["flow matching"]["network_evaluations"],
             "sps": cost["flow matching"]["samples_per_second"]}]


def cost_text(result: Result) -> str:
    cost = result.measured["sampling_cost"]
    ratio = cost["chart"]["samples_per_second"] / cost["flow matching"]["samples_per_second"]
    fm, ct = (result.arms[k].summary["energy"]["mean"] for k in (FLOW, CHART))
    calls = cost["flow matching"]["network_evaluations"]
    return (f"Sampling a chart is one decoder call; flow matching takes {calls}. "
            f"Measured here the chart samples {ratio:.0f}× faster. On this toy problem flow matching reaches an energy "
            f"distance of {fm:.4f} against chart transport's {ct:.4f}.")


def released_text(result: Result) -> str:
    """Chart transport with the released code's field, with and without its floor, in numbers."""
    rel, free, ct = (result.arms[k] for k in (RELEASED, RELEASED_NO_FLOOR, CHART))

    def pm(arm, k):
        return f"{statistics.fmean(p[k] for p in arm.per_seed):.4f}"

    return (f"**Measured.** With the released code's field and its floor, chart transport puts samples nearest both "
            f"modes in {rel.summary['both_modes_seeds']} of {rel.summary['seeds']} seeds, but {pm(rel, 'far')} of them "
            f"lie farther than 4σ from both (energy distance to the data {rel.summary['energy']['mean']:.4f}, latent "
            f"energy distance to the prior {pm(rel, 'latent_energy')}, latent spread {pm(rel, 'latent_spread')} where "
            f"the prior's is {2 ** 0.5:.2f}: the latents end near one point); "
            f"without the floor it holds both modes in {free.summary['both_modes_seeds']} of {free.summary['seeds']} "
            f"({pm(free, 'far')} far from both, energy "
            f"{free.summary['energy']['mean']:.4f}, latent {pm(free, 'latent_energy')}); the book's field: "
            f"{ct.summary['both_modes_seeds']} of {ct.summary['seeds']} (energy {ct.summary['energy']['mean']:.4f}, "
            f"latent {pm(ct, 'latent_energy')}).")
