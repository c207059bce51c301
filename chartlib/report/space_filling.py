"""Chapter 3 as the page shows it: the deterministic chart's rows per seed and computed sentences."""
from __future__ import annotations

from chartlib.chapters.surface import SurfaceSettings
from chartlib.runs.arms import Result


def _thresholds(s: SurfaceSettings) -> list[str]:
    """The off-surface thresholds as the measurements key them."""
    return [f"{t:g}" for t in s.thresholds]


def seed_columns(s: SurfaceSettings) -> dict[str, str]:
    off = {f"off{t}": f"share farther than {t} from the surface" for t in _thresholds(s)}
    return {"seed": "seed", "what": "points", **off,
            "median": "median distance to surface", "energy": "energy distance to held-out data",
            "dim": "two-NN dimension of data latents", "cov": "prior coverage ratio"}


def seed_rows(result: Result, s: SurfaceSettings, key: str = "deterministic") -> list[dict]:
    rows = []
    for p in result.arms[key].per_seed:
        for part, name in (("samples", "samples Dec(z)"), ("recon", "reconstructions Dec(E(x))")):
            q = p[part]
            rows.append({"seed": p["seed"], "what": name, **{f"off{t}": q["off_surface"][t] for t in _thresholds(s)},
                         "median": q["median_distance"], "energy": q["energy"],
                         "dim": p["latent_dimension"], "cov": p["coverage"]})
    return rows


def seed_caption(result: Result, s: SurfaceSettings) -> str:
    return (f"{s.n_eval} points per row. Baseline: energy distance {result.measured['floor_energy']:.4f} between "
            "two data samples; two-NN dimension of the data themselves "
            f"{result.measured['data_latent_dimension_reference']:.2f}."
            f" Coverage ratio: median distance from a prior sample to its nearest data latent over the median distance "
            f"to its nearest other prior sample (about 1 when the latents fill the prior).")


def space_filling_text(result: Result, s: SurfaceSettings) -> list[str]:
    sm, hi, baseline = result.arms["deterministic"].summary, _thresholds(s)[-1], result.measured["floor_energy"]
    out = [f"**Measured over {sm['seeds']} seeds.** The data latents have a two-NN dimension of "
           f"{sm['latent_dimension']['mean']:.2f} ± {sm['latent_dimension']['std']:.2f}: still a sheet, although the "
           f"prior is three-dimensional, and prior samples sit {sm['coverage']['mean']:.2f}× farther from the nearest "
           f"data latent than from each other. Decoded prior samples land farther than {hi} from the surface at a rate "
           f"of {sm[f'samples_off_surface@{hi}']['mean']:.3f} ± {sm[f'samples_off_surface@{hi}']['std']:.3f}, against "
           f"{sm[f'recon_off_surface@{hi}']['mean']:.3f} for reconstructions of data; energy distance to the data "
           f"{sm['samples_energy']['mean']:.4f} for samples and {sm['recon_energy']['mean']:.4f} for reconstructions "
           f"(data-vs-data baseline {baseline:.4f})."]
    rs, rr = sm[f"samples_off_surface@{hi}"]["mean"], sm[f"recon_off_surface@{hi}"]["mean"]
    why = ("the decoder is accurate on the latent sheet, and the off-surface samples come from prior mass that falls "
           "between its folds.")
    if rr == 0 < rs:        # no ratio to state: not one of the reconstructions left the surface
        out.append(f"Not one reconstruction of data (out of {s.n_eval} per seed) lands farther than {hi} from the "
                   f"surface, while decoded prior samples do: {why}")
    elif rr < 0.5 * rs:
        out.append(f"Reconstructions of data leave the surface {rs / rr:.1f}× less often than decoded prior samples: "
                   + why)
    else:
        out.append("Reconstructions leave the surface nearly as often as prior samples here, so in these runs the "
                   "decoder itself, not only the holes in the latent sheet, accounts for the off-surface points.")
    return out
