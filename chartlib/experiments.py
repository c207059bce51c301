"""The book's experiments: chapter settings (one dataclass each, profiles are instances) and the
functions that train (through the run cache) and measure.  Notebooks call these and draw."""
from __future__ import annotations

import functools
import statistics
import time
from dataclasses import dataclass, field, replace

import torch

from . import metrics
from .cache import cached
from .data import Bimodal, seeded
from .methods import ChartConfig, DriftConfig, FlowConfig, Run, Schedule
from .params import check_float, check_floats, check_int

HELD_OUT_SEED = 999_999   # held-out data never overlaps a training seed's stream
FLOOR_SEED = 999_998


def one_cpu_thread(chapter):
    """Run a toy chapter with one torch CPU thread, restoring the count after.

    Its networks are so small that a second thread costs more in synchronisation than it gains:
    on 2 cores a 500-step drift run took 2.3 s with one thread against 3.6 s with two, and a
    stochastic chart with its critic 10.7 s against 25 s.  Fixing the count also fixes the bits:
    with two threads the critic run's samples differed from the one-thread run's by up to 3e-6.
    """
    @functools.wraps(chapter)
    def wrapped(*args, **kwargs):
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return chapter(*args, **kwargs)
        finally:
            torch.set_num_threads(before)
    return wrapped


def spread(values: list[float]) -> dict:
    """mean, sample std, min, max of a list of numbers."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def bimodal_scores(samples: torch.Tensor, data: Bimodal, held_out: torch.Tensor) -> dict:
    """Mode shares, modes holding >= 10 %, share beyond 4 spreads of every mode, energy distance."""
    frac = metrics.mode_fractions(samples, data.modes)
    return {"fractions": [round(float(f), 4) for f in frac], "majority": float(frac.max()),
            "modes_held": metrics.modes_held(frac), "far": metrics.far_fraction(samples, data.modes, 4 * data.spread),
            "energy": metrics.energy_distance(samples, held_out)}


def majority_over_training(run: Run, data: Bimodal, key: str = "samples") -> list[float]:
    """Share of the largest mode in every frame of the run."""
    return [float(metrics.mode_fractions(f, data.modes).max()) for f in run.frames[key]]


def data_floor(data, n: int) -> tuple[torch.Tensor, float]:
    """Held-out data (n, D) and the energy distance between it and a second independent sample."""
    held = data.sample(n, seeded(HELD_OUT_SEED))
    return held, metrics.energy_distance(data.sample(n, seeded(FLOOR_SEED)), held)


def _arm(configs: list, data: Bimodal, held: torch.Tensor, device=None, key="samples") -> dict:
    runs = [cached(c, device=device) for c in configs]
    per_seed = [{"seed": c.schedule.seed, **bimodal_scores(r.final[key], data, held), "train_seconds": r.seconds}
                for c, r in zip(configs, runs)]
    return {"runs": runs, "per_seed": per_seed}


def summarise(arm: dict, collapse_at: float = 0.95) -> dict:
    """Spread over seeds of the majority share and energy distance; seeds with one mode >= collapse_at."""
    ps = arm["per_seed"]
    return {"majority": spread([p["majority"] for p in ps]), "energy": spread([p["energy"] for p in ps]),
            "collapsed_seeds": sum(p["majority"] >= collapse_at for p in ps), "seeds": len(ps),
            "both_modes_seeds": sum(p["modes_held"] == 2 for p in ps)}


# ---------------------------------------------------------------------------------------------
# chapter 1: mode collapse of plain drifting

@dataclass(frozen=True)
class ModeCollapseSettings:
    seeds: int = 5
    steps: int = 2000
    separation: float = 4.0
    spread: float = 0.3
    temperature: float = 0.05                     # the small temperature: separation / tau = 80
    large_temperature: float = 1.0
    multi_temperatures: tuple[float, ...] = (0.02, 0.05, 0.2)
    sweep_ratios: tuple[float, ...] = (4, 10, 20, 40, 80, 160)   # separation / temperature
    sweep_seeds: int = 3
    init_offset: tuple[float, float] = (0.0, 4.0)
    n_eval: int = 2000

    def __post_init__(self):
        check_int("seeds", self.seeds, 1, 50)
        check_int("steps", self.steps, 1)
        check_float("separation", self.separation, 0)
        check_float("spread", self.spread, 0)
        check_float("temperature", self.temperature, 0)
        check_float("large_temperature", self.large_temperature, 0)
        check_floats("multi_temperatures", self.multi_temperatures)
        check_floats("sweep_ratios", self.sweep_ratios)
        check_int("sweep_seeds", self.sweep_seeds, 1, 50)
        check_int("n_eval", self.n_eval, 10)

    @property
    def data(self) -> Bimodal:
        return Bimodal(self.separation, self.spread)

    def drift_config(self, seed: int, temperatures, scale_free: bool = False) -> DriftConfig:
        return DriftConfig(data=self.data, temperatures=tuple(temperatures), scale_free=scale_free,
                           init_offset=tuple(self.init_offset),
                           schedule=Schedule(seed=seed, steps=self.steps, n_eval=self.n_eval))


MODE_COLLAPSE_PROFILES = {
    "ci": ModeCollapseSettings(seeds=3, steps=500, sweep_ratios=(4, 20, 80), sweep_seeds=2),
    "full": ModeCollapseSettings(),
}


@one_cpu_thread
def mode_collapse(s: ModeCollapseSettings, device=None) -> dict:
    """Plain drifting from a disjoint start: three fields over seeds, and a separation/tau sweep."""
    start = time.perf_counter()
    held, floor = data_floor(s.data, s.n_eval)
    seeds = range(s.seeds)
    sep_over = lambda t: f"{s.separation / t:g}"  # noqa: E731
    arms_spec = {   # stable key: (temperatures, scale_free, description, short label for figure panels)
        "small_tau": ((s.temperature,), False, f"tau={s.temperature:g} (separation/tau={sep_over(s.temperature)})",
                      f"τ={s.temperature:g} (sep/τ={sep_over(s.temperature)})"),
        "large_tau": ((s.large_temperature,), False,
                      f"tau={s.large_temperature:g} (separation/tau={sep_over(s.large_temperature)})",
                      f"τ={s.large_temperature:g} (sep/τ={sep_over(s.large_temperature)})"),
        "multi_tau": (s.multi_temperatures, True,
                      "multi-tau " + "/".join(f"{t:g}" for t in s.multi_temperatures) + ", scale-free",
                      "multi-τ, scale-free"),
    }
    arms = {key: {**_arm([s.drift_config(i, t, sf) for i in seeds], s.data, held, device), "name": name,
                  "label": label}
            for key, (t, sf, name, label) in arms_spec.items()}
    for arm in arms.values():
        arm["majority_over_training"] = [majority_over_training(r, s.data) for r in arm["runs"]]
        arm["summary"] = summarise(arm)
    sweep = {}
    for ratio in s.sweep_ratios:
        tau = s.separation / ratio
        arm = _arm([s.drift_config(i, (tau,)) for i in range(s.sweep_seeds)], s.data, held, device)
        sweep[ratio] = {"temperature": tau, "per_seed": arm["per_seed"], "summary": summarise(arm)}
    return {"arms": arms, "sweep": sweep, "floor_energy": floor, "steps": arms[next(iter(arms))]["runs"][0].steps,
            "wall_seconds": time.perf_counter() - start}


# ---------------------------------------------------------------------------------------------
# chapter 2: chart transport and the flow-matching baseline

@dataclass(frozen=True)
class ChartTransportSettings:
    seeds: int = 5
    steps: int = 2000
    separation: float = 4.0
    spread: float = 0.3
    temperature: float = 0.05
    drift_weight: float = 1.0
    latent_offset: tuple[float, float] = (6.0, 0.0)     # the "offset encoder" control
    weight_sweep: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)
    weight_sweep_seeds: int = 3
    euler_steps: int = 50
    n_eval: int = 2000

    def __post_init__(self):
        check_int("seeds", self.seeds, 1, 50)
        check_int("steps", self.steps, 1)
        check_float("separation", self.separation, 0)
        check_float("spread", self.spread, 0)
        check_float("temperature", self.temperature, 0)
        check_float("drift_weight", self.drift_weight, 0, low_open=False)
        check_floats("weight_sweep", self.weight_sweep)
        check_int("weight_sweep_seeds", self.weight_sweep_seeds, 1, 50)
        check_int("euler_steps", self.euler_steps, 1, 1000)
        check_int("n_eval", self.n_eval, 10)

    @property
    def data(self) -> Bimodal:
        return Bimodal(self.separation, self.spread)

    def schedule(self, seed: int) -> Schedule:
        return Schedule(seed=seed, steps=self.steps, n_eval=self.n_eval)

    def chart_config(self, seed: int, **changes) -> ChartConfig:
        base = ChartConfig(data=self.data, temperatures=(self.temperature,), drift_weight=self.drift_weight,
                           schedule=self.schedule(seed))
        return replace(base, **changes)


CHART_TRANSPORT_PROFILES = {
    "ci": ChartTransportSettings(seeds=3, steps=500, weight_sweep=(0.1, 1.0), weight_sweep_seeds=1),
    "full": ChartTransportSettings(),
}


def sampling_rate(sample, n: int = 2000, repeats: int = 5, device=None) -> float:
    """Median samples per second of ``sample(n)`` over a few repeats (after one warm-up call).
    On CUDA the clock stops only after the device has finished."""
    sync = torch.cuda.synchronize if torch.device(device or "cpu").type == "cuda" else (lambda: None)
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


@one_cpu_thread
def chart_transport(s: ChartTransportSettings, device=None) -> dict:
    """Chart transport vs its controls (offset encoder, detached reconstruction) and flow matching."""
    from .methods import build_chart, euler_sample
    from .nets import TimeMLP
    start = time.perf_counter()
    held, floor = data_floor(s.data, s.n_eval)
    seeds = range(s.seeds)
    arms = {
        "chart transport": _arm([s.chart_config(i) for i in seeds], s.data, held, device),
        "chart, offset encoder": _arm([s.chart_config(i, latent_offset=tuple(s.latent_offset)) for i in seeds],
                                      s.data, held, device),
        "chart, detached reconstruction": _arm([s.chart_config(0, detach_recon=True)], s.data, held, device),
        "flow matching": _arm([FlowConfig(data=s.data, euler_steps=s.euler_steps, schedule=s.schedule(i))
                               for i in seeds], s.data, held, device),
    }
    for name, arm in arms.items():
        arm["summary"] = summarise(arm)
        if name != "flow matching":
            arm["majority_over_training"] = [majority_over_training(r, s.data) for r in arm["runs"]]
            for p, r in zip(arm["per_seed"], arm["runs"]):
                p["recon_error"] = float((r.final["recon"] - r.final["data"]).pow(2).sum(1).mean())
                p["latent_energy"] = metrics.energy_distance(r.final["latents"], r.final["prior"])
                p["latent_energy_start"] = metrics.energy_distance(r.frames["latents"][0], r.frames["prior"][0])
    weight_sweep = {}
    for lam in s.weight_sweep:
        arm = _arm([s.chart_config(i, drift_weight=lam) for i in range(s.weight_sweep_seeds)], s.data, held, device)
        for p, r in zip(arm["per_seed"], arm["runs"]):
            p["recon_error"] = float((r.final["recon"] - r.final["data"]).pow(2).sum(1).mean())
            p["latent_energy"] = metrics.energy_distance(r.final["latents"], r.final["prior"])
        weight_sweep[lam] = {"per_seed": arm["per_seed"], "summary": summarise(arm)}
    # sampling cost: one decoder call vs euler_steps velocity calls, timed on the device used
    chart_run, flow_run = arms["chart transport"]["runs"][0], arms["flow matching"]["runs"][0]
    device = torch.device(device or "cpu")
    _, dec = build_chart(s.chart_config(0))
    dec.load_state_dict(chart_run.state["decoder"])
    vel = TimeMLP(2, s.schedule(0).width, s.schedule(0).depth)
    vel.load_state_dict(flow_run.state["velocity"])
    dec, vel = dec.to(device), vel.to(device)
    noise = lambda n: torch.randn(n, 2, device=device)  # noqa: E731
    cost = {"chart": {"network_evaluations": 1,
                      "samples_per_second": sampling_rate(lambda n: dec(noise(n)), device=device)},
            "flow matching": {"network_evaluations": s.euler_steps,
                              "samples_per_second": sampling_rate(lambda n: euler_sample(vel, noise(n), s.euler_steps),
                                                                  device=device)}}
    return {"arms": arms, "weight_sweep": weight_sweep, "floor_energy": floor, "sampling_cost": cost,
            "steps": chart_run.steps, "wall_seconds": time.perf_counter() - start}


def json_ready(result: dict) -> dict:
    """The result without its Run objects (for the metrics JSON)."""
    if isinstance(result, dict):
        return {k: json_ready(v) for k, v in result.items() if k != "runs"}
    if isinstance(result, list):
        return [json_ready(v) for v in result]
    return result


# ---------------------------------------------------------------------------------------------
# chapters 3 and 4: space filling, and stochastic encoding

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
        check_floats("thresholds", self.thresholds)
        check_int("n_eval", self.n_eval, 10)
        check_int("n_show", self.n_show, 2)

    @property
    def data(self):
        from .data import SurfaceMixture
        return SurfaceMixture()

    def schedule(self, seed: int) -> Schedule:
        return Schedule(seed=seed, steps=self.steps, batch=self.batch, n_eval=self.n_eval, n_show=self.n_show)

    def deterministic(self, seed: int) -> ChartConfig:
        return ChartConfig(data=self.data, latent_dim=3, temperatures=tuple(self.temperatures),
                           scale_free=self.scale_free, drift_weight=self.drift_weight, schedule=self.schedule(seed))

    def stochastic(self, seed: int, field: str, noise: float | None = None, steps: int | None = None):
        from .methods import StochasticChartConfig
        return StochasticChartConfig(
            data=self.data, latent_dim=3, temperatures=tuple(self.temperatures), scale_free=self.scale_free,
            drift_weight=self.drift_weight if field == "kernel" else self.critic_weight, field=field,
            critic_noise=self.critic_noise if noise is None else noise,
            critic_steps=self.critic_steps if steps is None else steps, schedule=self.schedule(seed))


SURFACE_PROFILES = {
    "ci": SurfaceSettings(seeds=2, steps=1000),
    "full": SurfaceSettings(),
}


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


def _surface_arm(configs, data, held, thresholds, device) -> dict:
    runs = [cached(c, device=device) for c in configs]
    per_seed = [{"seed": c.schedule.seed, **surface_scores(r, data, held, thresholds), "train_seconds": r.seconds}
                for c, r in zip(configs, runs)]
    flat = lambda f: spread([f(p) for p in per_seed])  # noqa: E731
    summary = {"seeds": len(per_seed),
               "samples_energy": flat(lambda p: p["samples"]["energy"]),
               "recon_energy": flat(lambda p: p["recon"]["energy"]),
               "samples_median_distance": flat(lambda p: p["samples"]["median_distance"]),
               "latent_dimension": flat(lambda p: p["latent_dimension"]),
               "coverage": flat(lambda p: p["coverage"])}
    for t in thresholds:
        summary[f"samples_off_surface@{t:g}"] = flat(lambda p: p["samples"]["off_surface"][str(t)])
        summary[f"recon_off_surface@{t:g}"] = flat(lambda p: p["recon"]["off_surface"][str(t)])
    if "sigma_mean" in per_seed[0]:
        summary["sigma_mean"] = flat(lambda p: p["sigma_mean"])
    return {"runs": runs, "per_seed": per_seed, "summary": summary}


@one_cpu_thread
def surface_chapter(s: SurfaceSettings, stochastic: bool, device=None) -> dict:
    """Chapter 3 (``stochastic=False``): the deterministic 3-D chart.  Chapter 4: the same, plus the
    stochastic chart with the kernel field, with the critic field, and the critic's failure setting."""
    start = time.perf_counter()
    data = s.data
    held, floor = data_floor(data, s.n_eval)
    seeds = range(s.seeds)
    arms = {"deterministic": _surface_arm([s.deterministic(i) for i in seeds], data, held, s.thresholds, device)}
    if stochastic:
        arms["stochastic, kernel field"] = _surface_arm([s.stochastic(i, "kernel") for i in seeds], data, held,
                                                        s.thresholds, device)
        arms["stochastic, critic field"] = _surface_arm([s.stochastic(i, "critic") for i in seeds], data, held,
                                                        s.thresholds, device)
        arms[f"stochastic, critic at noise {s.failing_noise:g}, {s.failing_steps} step"] = _surface_arm(
            [s.stochastic(0, "critic", s.failing_noise, s.failing_steps)], data, held, s.thresholds, device)
    floor_dist = data.distance_to_surface(held)
    return {"arms": arms, "floor_energy": floor, "thresholds": list(s.thresholds),
            "data_latent_dimension_reference": metrics.two_nn_dimension(held),
            "floor_off_surface": {str(t): metrics.off_surface_rate(floor_dist, t) for t in s.thresholds},
            "steps": arms["deterministic"]["runs"][0].steps, "wall_seconds": time.perf_counter() - start}
