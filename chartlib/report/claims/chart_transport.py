"""Chapter 2's claims: coverage, the prior's placement, the reconstruction gradient, cost, the released field."""
from __future__ import annotations

from chartlib.measure.scores import COLLAPSED

from ..format import percent
from .mode_collapse import FAR
from .verdicts import count_verdict, per_seed, row

DETACHED = 10.0        # "loses the data": detached reconstruction error at least this many times the chart's


def claims(m: dict) -> list[dict]:
    arms, rows = m["arms"], []
    ct = arms["chart"]["per_seed"]
    both = sum(p["modes_held"] == 2 for p in ct)
    rows.append(row("02_chart_transport", "note", "Chart transport covers every mode (same τ that collapses drifting)",
                     "seeds whose decoded samples hold both modes (each ≥ 10 %); energy distance to held-out data",
                     f"{both}/{len(ct)} seeds; energy {per_seed([p['energy'] for p in ct], '.4f')} "
                     f"(data floor {m['floor_energy']:.4f})",
                     "reproduced if every seed holds both modes, partly if some do", count_verdict(both, len(ct)),
                     keys=("arms.chart",)))
    off = arms["offset_encoder"]["per_seed"]
    collapsed = sum(p["majority"] >= COLLAPSED for p in off)
    start = [p["latent_energy_start"] for p in off]
    rows.append(row("02_chart_transport", "book", "Chart transport needs latents that start inside the prior",
                    f"offset encoder (latents start away from the prior): seeds with ≥ {percent(COLLAPSED)} in "
                    "one mode",
                    f"{collapsed}/{len(off)} seeds collapsed; starting latent energy distance "
                    f"{per_seed(start, '.2f')} "
                     f"vs {per_seed([p['latent_energy_start'] for p in ct], '.3f')} for the plain chart",
                     "reproduced if every offset seed collapses while every plain chart seed holds both modes; "
                     "partly if only some offset seeds collapse",
                     count_verdict(collapsed, len(off)) if both == len(ct) else "not reproduced",
                     keys=("arms.offset_encoder", "arms.chart")))
    det, base = arms["detached_recon"]["per_seed"][0], ct[0]
    ratio = det["recon_error"] / base["recon_error"]
    rows.append(row("02_chart_transport", "note", "The reconstruction gradient must reach the encoder: with the "
                     "latents detached for reconstruction the chart loses the data",
                     "reconstruction error, latents detached vs not (seed 0)",
                     f"{det['recon_error']:.3g} vs {base['recon_error']:.3g} (×{ratio:.0f})",
                     f"reproduced if the detached error is at least {DETACHED:g}× the chart's",
                     "reproduced" if ratio >= DETACHED else "not reproduced",
                     keys=("arms.detached_recon", "arms.chart"), seeds=tuple(sorted({det["seed"], base["seed"]}))))
    cost = m["sampling_cost"]
    chart_sps, flow_sps = cost["chart"]["samples_per_second"], cost["flow matching"]["samples_per_second"]
    speed = chart_sps / flow_sps
    fm = arms["flow"]["per_seed"]
    rows.append(row("02_chart_transport", "book", "A chart samples in 1 network call, flow matching in "
                     f"{cost['flow matching']['network_evaluations']}: far cheaper at similar quality on 2-D data",
                     "samples per second (median of repeats); energy distance of flow matching",
                     f"{chart_sps:,.0f} vs {flow_sps:,.0f} "
                     f"samples/s (×{speed:.0f}); flow matching energy {per_seed([p['energy'] for p in fm], '.4f')}",
                     "reproduced if the chart samples faster than flow matching",
                     "reproduced" if speed > 1 else "not reproduced", keys=("sampling_cost", "arms.flow")))
    if "released" in arms:
        rel = arms["released"]["per_seed"]
        fits = sum(p["modes_held"] == 2 and p["far"] <= FAR for p in rel)
        rows.append(row("02_chart_transport", "book", "Chart transport covers both modes with the released code's "
                         "field too (floor 1e-6)", "seeds whose decoded samples hold both modes (each ≥ 10 %) with at "
                         f"most {FAR:.0%} of them farther than 4σ from both; energy distance to held-out data",
                         f"{fits}/{len(rel)} seeds; far from both modes {per_seed([p['far'] for p in rel])}; energy "
                         f"{per_seed([p['energy'] for p in rel], '.4f')} "
                         f"(book's field {per_seed([p['energy'] for p in ct], '.4f')})",
                         "reproduced if every seed does, partly if some do", count_verdict(fits, len(rel)),
                         keys=("arms.released", "arms.chart")))
    return rows


