"""Scores of trained runs, written once for every chapter: spreads over seeds, the data-vs-data
baseline, mode and surface scores, reconstruction error, latent distance to the prior, sampling rate."""
from __future__ import annotations

import statistics
import time

import torch

from chartlib.core.data import seeded
from chartlib.core.training import Run

from . import metrics

HELD_OUT_SEED = 999_999   # held-out data never overlaps a training seed's stream
BASELINE_SEED = 999_998      # the second independent data sample of the data-vs-data baseline
COLLAPSED = 0.95          # a run has collapsed when at least this share of its samples is in one mode


def spread(values: list[float]) -> dict:
    """mean, sample std, min, max and count of a list of numbers."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def seed_values(per_seed: list[dict], *path: str) -> list:
    """One value per seed, read at ``path`` in each per-seed record, e.g. ``("scores", "fd")``."""
    out = []
    for p in per_seed:
        for k in path:
            p = p[k]
        out.append(p)
    return out


def data_baseline(data, n: int) -> tuple[torch.Tensor, float]:
    """Held-out data (n, D) and the energy distance between it and a second independent sample."""
    held = data.sample(n, seeded(HELD_OUT_SEED))
    return held, metrics.energy_distance(data.sample(n, seeded(BASELINE_SEED)), held)


def bimodal_scores(samples: torch.Tensor, data, held_out: torch.Tensor) -> dict:
    """Mode shares, modes holding >= 10 %, share beyond 4 spreads of every mode, energy distance,
    and the spread of the samples (norm of their per-coordinate standard deviation)."""
    frac = metrics.mode_fractions(samples, data.modes)
    return {"fractions": [round(float(f), 4) for f in frac], "majority": float(frac.max()),
            "modes_held": metrics.modes_held(frac), "far": metrics.far_fraction(samples, data.modes, 4 * data.spread),
            "energy": metrics.energy_distance(samples, held_out), "spread": float(samples.std(0).norm())}


def majority_over_training(run: Run, data, key: str = "samples") -> list[float]:
    """Share of the largest mode in every frame of the run."""
    return [float(metrics.mode_fractions(f, data.modes).max()) for f in run.frames[key]]


def bimodal_summary(per_seed: list[dict]) -> dict:
    """Spread over seeds of the majority share and energy distance; collapsed and two-mode seeds."""
    return {"majority": spread([p["majority"] for p in per_seed]), "energy": spread([p["energy"] for p in per_seed]),
            "collapsed_seeds": sum(p["majority"] >= COLLAPSED for p in per_seed), "seeds": len(per_seed),
            "both_modes_seeds": sum(p["modes_held"] == 2 for p in per_seed)}


def recon_error(data: torch.Tensor, recon: torch.Tensor) -> float:
    """Mean over points of the squared reconstruction error summed over coordinates."""
    return float((recon - data).pow(2).sum(1).mean())


def latent_energy(latents: torch.Tensor, prior: torch.Tensor, at_most: int | None = None) -> float:
    """Energy distance between latents (n, d) and prior samples (m, d), on their first ``at_most`` rows."""
    return metrics.energy_distance(latents[:at_most], prior[:at_most])


def chart_fit(run: Run) -> dict:
    """Reconstruction error and latent-to-prior energy distance of a chart's final sample, the
    latent energy distance of its first frame (the fresh encoder), and the spread of the final
    latents (norm of their per-coordinate standard deviation; the prior's is sqrt(d))."""
    f = run.final
    return {"recon_error": recon_error(f["data"], f["recon"]), "latent_energy": latent_energy(f["latents"], f["prior"]),
            "latent_energy_start": latent_energy(run.frames["latents"][0], run.frames["prior"][0]),
            "latent_spread": float(f["latents"].std(0).norm())}


def surface_scores(run: Run, data, held: torch.Tensor, thresholds) -> dict:
    """Off-surface rates and median distance of samples and reconstructions, energy distances,
    latent thickness (two-NN dimension) and coverage of the prior by the data latents."""
    out = {}
    for key in ("samples", "recon"):
        dist = data.distance_to_surface(run.final[key])
        out[key] = {"off_surface": {str(t): metrics.off_surface_rate(dist, t) for t in thresholds},
                    "median_distance": float(dist.median()),
                    "energy": metrics.energy_distance(run.final[key], held)}
    frac = metrics.mode_fractions(run.final["samples"], data.modes)
    out["modes_held"] = metrics.modes_held(frac, at_least=0.5 / data.n_components)
    out["latent_dimension"] = metrics.two_nn_dimension(run.final["latents"])
    out["coverage"] = metrics.coverage_ratio(run.final["prior"], run.final["latents"])
    if "sigma" in run.final:
        out["sigma_mean"] = float(run.final["sigma"].mean())
    return out


def surface_summary(per_seed: list[dict], thresholds) -> dict:
    def flat(value):
        return spread([value(p) for p in per_seed])

    summary = {"seeds": len(per_seed),
               "samples_energy": flat(lambda p: p["samples"]["energy"]),
               "recon_energy": flat(lambda p: p["recon"]["energy"]),
               "samples_median_distance": flat(lambda p: p["samples"]["median_distance"]),
               "latent_dimension": flat(lambda p: p["latent_dimension"]),
               "coverage": flat(lambda p: p["coverage"])}
    for t in thresholds:
        summary[f"samples_off_surface@{t:g}"] = flat(lambda p, t=t: p["samples"]["off_surface"][str(t)])
        summary[f"recon_off_surface@{t:g}"] = flat(lambda p, t=t: p["recon"]["off_surface"][str(t)])
    if "sigma_mean" in per_seed[0]:
        summary["sigma_mean"] = flat(lambda p: p["sigma_mean"])
    return summary


def sampling_rate(sample, n: int = 2000, repeats: int = 5, device=None) -> float:
    """Median samples per second of ``sample(n)`` over a few repeats (after one warm-up call).
    On CUDA the clock stops only after the device has finished."""
    cuda = torch.device(device or "cpu").type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    with torch.no_grad():
        sample(n)
        times = []
        for _ in range(repeats):
            sync()
            t = time.perf_counter()
            sample(n)
            sync()
            times.append(time.perf_counter() - t)
    return n / statistics.median(times)


