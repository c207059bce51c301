"""Chapter 4 as the page shows it: every arm side by side, σ over training, computed sentences."""
from __future__ import annotations

import statistics

from chartlib.chapters.surface import SurfaceSettings
from chartlib.runs.arms import Result

from .format import spread_text


def _thresholds(s: SurfaceSettings) -> list[str]:
    """The off-surface thresholds as the measurements key them."""
    return [f"{t:g}" for t in s.thresholds]

def arm_columns(s: SurfaceSettings) -> dict[str, str]:
    th = _thresholds(s)
    return {"arm": "arm", "seeds": "seeds", "dim": "two-NN dimension of latents", "cov": "prior coverage ratio",
            **{f"off{t}": f"samples farther than {t} from the surface" for t in th},
            "recon_off": f"reconstructions farther than {th[-1]}", "energy": "energy distance to data",
            "sigma": "mean σ at the end", "time": "train time per run (s)"}


def arm_rows(result: Result, s: SurfaceSettings) -> list[dict]:
    th, rows = _thresholds(s), []
    for arm in result.arms.values():
        sm = arm.summary

        def f(k, d=3, sm=sm):
            return spread_text(sm[k], f".{d}f")

        rows.append({"arm": arm.label, "seeds": sm["seeds"], "dim": f("latent_dimension", 2), "cov": f("coverage", 2),
                     **{f"off{t}": f(f"samples_off_surface@{t}") for t in th},
                     "recon_off": f(f"recon_off_surface@{th[-1]}"), "energy": f("samples_energy", 4),
                     "sigma": f("sigma_mean", 3) if "sigma_mean" in sm else "—",
                     "time": statistics.fmean(p["train_seconds"] for p in arm.per_seed)})
    return rows


def sigma_lines(result: Result, points: int = 200) -> tuple[list[int], dict[str, list[float]]]:
    """Mean encoder sigma over training, every stochastic run, thinned to about ``points`` values."""
    lines, stride = {}, 1
    for arm in result.arms.values():
        for seed, run in enumerate(arm.runs):
            if "sigma" in run.history:
                sig = run.history["sigma"]
                stride = max(1, len(sig) // points)
                lines[f"{arm.label} · seed {seed}"] = sig[::stride]
    n = len(next(iter(lines.values()))) if lines else 0
    return list(range(0, n * stride, stride)), lines


def stochastic_text(result: Result, s: SurfaceSettings) -> list[str]:
    d, k, c = (result.arms[n].summary for n in ("deterministic", "kernel", "critic"))
    bad, hi, baseline = result.arms["failing_critic"].per_seed[0], _thresholds(s)[-1], result.measured["floor_energy"]
    out = [f"**Measured.** Latent two-NN dimension: {d['latent_dimension']['mean']:.2f} deterministic, "
           f"{k['latent_dimension']['mean']:.2f} stochastic with the kernel field, {c['latent_dimension']['mean']:.2f} "
           f"with the critic. Samples farther than {hi} from the surface: {d[f'samples_off_surface@{hi}']['mean']:.3f} "
           f"deterministic, {k[f'samples_off_surface@{hi}']['mean']:.3f} kernel, "
           f"{c[f'samples_off_surface@{hi}']['mean']:.3f} critic. Energy distance to the data: "
           f"{d['samples_energy']['mean']:.4f}, {k['samples_energy']['mean']:.4f}, {c['samples_energy']['mean']:.4f} "
           f"(data-vs-data baseline {baseline:.4f}). With the critic at noise {s.failing_noise:g} and "
           f"{s.failing_steps} update per step, "
           f"the final mean σ is {bad['sigma_mean']:.4f} (against {c['sigma_mean']['mean']:.3f} at noise "
           f"{s.critic_noise:g} with {s.critic_steps} updates), the latent dimension {bad['latent_dimension']:.2f}, "
           "and "
           f"the off-surface rate {bad['samples']['off_surface'][hi]:.3f}."]
    working = c["sigma_mean"]["mean"]
    if bad["sigma_mean"] < 0.1 * working:
        out.append(f"Here the failing critic let σ collapse to {bad['sigma_mean']:.4f}, a tenth or less of the working "
                   "value: the fibers shrank back towards points, as the note's prototype saw.")
    else:
        out.append(f"Here σ did **not** collapse in the failing setting ({bad['sigma_mean']:.3f} against "
                   f"{working:.3f}), "
                   "unlike in the note's prototype; what fails is the critic's field: the samples leave the surface "
                   f"(off-surface rate {bad['samples']['off_surface'][hi]:.3f}, coverage ratio {bad['coverage']:.2f}).")
    return out
