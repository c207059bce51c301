"""Chapters 3 and 4, space filling and stochastic encoding, on a mixture on a 2-D surface in 3-D:
settings, profiles, ``run`` and the chapters' text."""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from . import metrics
from .compute import one_cpu_thread
from .data import SurfaceMixture
from .encoders import Deterministic, Gaussian
from .evaluation import Result, Stopwatch, data_floor, surface_scores, surface_summary, train_arms
from .fields import CriticField, KernelField
from .methods import ChartConfig, Schedule
from .params import check_float, check_floats, check_int


@dataclass(frozen=True)
class SurfaceSettings:
    """Both 3-D chapters: the deterministic chart (chapter 3) and the stochastic ones (chapter 4)."""

    seeds: int = 3
    steps: int = 3000
    batch: int = 256
    temperatures: tuple[float, ...] = (0.05,)
    scale_free: bool = False
    drift_weight: float = 1.0             # deterministic chart and stochastic chart with the kernel field
    critic_weight: float = 3.0            # stochastic chart with the critic field
    critic_noise: float = 0.5
    critic_steps: int = 5
    failing_noise: float = 0.2            # the critic settings that let sigma collapse
    failing_steps: int = 1
    init_log_scale: float = -1.0
    thresholds: tuple[float, ...] = (0.1, 0.3)
    n_eval: int = 2000
    n_show: int = 400

    def __post_init__(self):
        check_int("seeds", self.seeds, 1, 50)
        check_int("steps", self.steps, 1)
        check_int("batch", self.batch, 2)
        check_floats("temperatures", self.temperatures)
        check_float("drift_weight", self.drift_weight, 0, low_open=False)
        check_float("critic_weight", self.critic_weight, 0, low_open=False)
        check_float("critic_noise", self.critic_noise, 0)
        check_int("critic_steps", self.critic_steps, 1, 100)
        check_float("failing_noise", self.failing_noise, 0)
        check_int("failing_steps", self.failing_steps, 1, 100)
        check_float("init_log_scale", self.init_log_scale, -10, 3, low_open=False)
        check_floats("thresholds", self.thresholds)
        check_int("n_eval", self.n_eval, 10)
        check_int("n_show", self.n_show, 2)

    @property
    def data(self) -> SurfaceMixture:
        return SurfaceMixture()

    def config(self, seed: int, encoder, field, weight: float) -> ChartConfig:
        return ChartConfig(data=self.data, latent_dim=3, encoder=encoder, field=field, drift_weight=weight,
                           schedule=Schedule(seed=seed, steps=self.steps, batch=self.batch, n_eval=self.n_eval,
                                             n_show=self.n_show))

    def arms(self, stochastic: bool) -> dict[str, tuple[str, object, object, float, int]]:
        """Stable key -> (label, encoder, field, lambda, seeds) of chapter 3 (or 4, ``stochastic``)."""
        kernel = KernelField(tuple(self.temperatures), self.scale_free)
        fiber = Gaussian(self.init_log_scale)
        out = {"deterministic": ("deterministic", Deterministic(), kernel, self.drift_weight, self.seeds)}
        if stochastic:
            out["kernel"] = ("stochastic, kernel field", fiber, kernel, self.drift_weight, self.seeds)
            out["critic"] = ("stochastic, critic field", fiber, CriticField(self.critic_noise, self.critic_steps),
                             self.critic_weight, self.seeds)
            out["failing_critic"] = (f"stochastic, critic at noise {self.failing_noise:g}, {self.failing_steps} step",
                                     fiber, CriticField(self.failing_noise, self.failing_steps), self.critic_weight, 1)
        return out


PROFILES = {
    "ci": SurfaceSettings(seeds=2, steps=1000),
    "full": SurfaceSettings(),
}


@one_cpu_thread
def run(s: SurfaceSettings, stochastic: bool, device=None) -> Result:
    """Chapter 3 (``stochastic=False``): the deterministic 3-D chart.  Chapter 4: the same, plus the
    stochastic chart with the kernel field, with the critic field, and the critic's failure setting."""
    clock = Stopwatch()
    data = s.data
    held, floor = data_floor(data, s.n_eval)
    score = lambda r: surface_scores(r, data, held, s.thresholds)  # noqa: E731
    arms = train_arms({key: (label, [s.config(i, encoder, field, weight) for i in range(seeds)], score)
                       for key, (label, encoder, field, weight, seeds) in s.arms(stochastic).items()}, device)
    for arm in arms.values():
        arm.summary = surface_summary(arm.per_seed, s.thresholds)
    floor_dist = data.distance_to_surface(held)
    measured = {"floor_energy": floor, "thresholds": list(s.thresholds),
                "data_latent_dimension_reference": metrics.two_nn_dimension(held),
                "floor_off_surface": {str(t): metrics.off_surface_rate(floor_dist, t) for t in s.thresholds}}
    return Result(arms, measured, arms["deterministic"].runs[0].steps, clock.seconds())


# ---------------------------------------------------------------------------------------------
# what the notebooks show

def _th(s: SurfaceSettings) -> list[str]:
    return [f"{t:g}" for t in s.thresholds]


def seed_columns(s: SurfaceSettings) -> dict[str, str]:
    return {"seed": "seed", "what": "points", **{f"off{t}": f"share farther than {t} from the surface" for t in _th(s)},
            "median": "median distance to surface", "energy": "energy distance to held-out data",
            "dim": "two-NN dimension of data latents", "cov": "prior coverage ratio"}


def seed_rows(result: Result, s: SurfaceSettings, key: str = "deterministic") -> list[dict]:
    rows = []
    for p in result.arms[key].per_seed:
        for part, name in (("samples", "samples Dec(z)"), ("recon", "reconstructions Dec(E(x))")):
            q = p[part]
            rows.append({"seed": p["seed"], "what": name, **{f"off{t}": q["off_surface"][t] for t in _th(s)},
                         "median": q["median_distance"], "energy": q["energy"],
                         "dim": p["latent_dimension"], "cov": p["coverage"]})
    return rows


def seed_caption(result: Result, s: SurfaceSettings) -> str:
    return (f"{s.n_eval} points per row. Floor: energy distance {result.measured['floor_energy']:.4f} between two data "
            f"samples; two-NN dimension of the data themselves {result.measured['data_latent_dimension_reference']:.2f}."
            f" Coverage ratio: median distance from a prior sample to its nearest data latent over the median distance "
            f"to its nearest other prior sample (about 1 when the latents fill the prior).")


def space_filling_text(result: Result, s: SurfaceSettings) -> list[str]:
    sm, hi, floor = result.arms["deterministic"].summary, _th(s)[-1], result.measured["floor_energy"]
    out = [f"**Measured over {sm['seeds']} seeds.** The data latents have a two-NN dimension of "
           f"{sm['latent_dimension']['mean']:.2f} ± {sm['latent_dimension']['std']:.2f}: still a sheet, although the "
           f"prior is three-dimensional, and prior samples sit {sm['coverage']['mean']:.2f}× farther from the nearest "
           f"data latent than from each other. Decoded prior samples land farther than {hi} from the surface at a rate "
           f"of {sm[f'samples_off_surface@{hi}']['mean']:.3f} ± {sm[f'samples_off_surface@{hi}']['std']:.3f}, against "
           f"{sm[f'recon_off_surface@{hi}']['mean']:.3f} for reconstructions of data; energy distance to the data "
           f"{sm['samples_energy']['mean']:.4f} for samples and {sm['recon_energy']['mean']:.4f} for reconstructions "
           f"(floor {floor:.4f})."]
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


def arm_columns(s: SurfaceSettings) -> dict[str, str]:
    th = _th(s)
    return {"arm": "arm", "seeds": "seeds", "dim": "two-NN dimension of latents", "cov": "prior coverage ratio",
            **{f"off{t}": f"samples farther than {t} from the surface" for t in th},
            "recon_off": f"reconstructions farther than {th[-1]}", "energy": "energy distance to data",
            "sigma": "mean σ at the end", "time": "train time per run (s)"}


def arm_rows(result: Result, s: SurfaceSettings) -> list[dict]:
    th, rows = _th(s), []
    for arm in result.arms.values():
        sm = arm.summary
        f = lambda k, d=3: f"{sm[k]['mean']:.{d}f} ± {sm[k]['std']:.{d}f}"  # noqa: E731
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
    bad, hi, floor = result.arms["failing_critic"].per_seed[0], _th(s)[-1], result.measured["floor_energy"]
    out = [f"**Measured.** Latent two-NN dimension: {d['latent_dimension']['mean']:.2f} deterministic, "
           f"{k['latent_dimension']['mean']:.2f} stochastic with the kernel field, {c['latent_dimension']['mean']:.2f} "
           f"with the critic. Samples farther than {hi} from the surface: {d[f'samples_off_surface@{hi}']['mean']:.3f} "
           f"deterministic, {k[f'samples_off_surface@{hi}']['mean']:.3f} kernel, "
           f"{c[f'samples_off_surface@{hi}']['mean']:.3f} critic. Energy distance to the data: "
           f"{d['samples_energy']['mean']:.4f}, {k['samples_energy']['mean']:.4f}, {c['samples_energy']['mean']:.4f} "
           f"(floor {floor:.4f}). With the critic at noise {s.failing_noise:g} and {s.failing_steps} update per step, "
           f"the final mean σ is {bad['sigma_mean']:.4f} (against {c['sigma_mean']['mean']:.3f} at noise "
           f"{s.critic_noise:g} with {s.critic_steps} updates), the latent dimension {bad['latent_dimension']:.2f}, and "
           f"the off-surface rate {bad['samples']['off_surface'][hi]:.3f}."]
    working = c["sigma_mean"]["mean"]
    if bad["sigma_mean"] < 0.1 * working:
        out.append(f"Here the failing critic let σ collapse to {bad['sigma_mean']:.4f}, a tenth or less of the working "
                   "value: the fibers shrank back towards points, as the note's prototype saw.")
    else:
        out.append(f"Here σ did **not** collapse in the failing setting ({bad['sigma_mean']:.3f} against {working:.3f}); "
                   "the note's prototype saw σ fall to about 0.003. What fails in our runs is the critic itself: with "
                   "one update per step it lags behind the moving latents, its field is mostly noise, and the samples "
                   f"leave the surface (off-surface rate {bad['samples']['off_surface'][hi]:.3f}, coverage ratio "
                   f"{bad['coverage']:.2f}). In side experiments with a smaller critic (64 units, 2 layers) σ did "
                   "collapse, so the failure mode depends on the critic's capacity as well as on its noise level and "
                   "update count.")
    return out
