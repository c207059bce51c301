"""Chapter 1, mode collapse of plain drifting: settings, profiles, ``run`` and the chapter's text."""
from __future__ import annotations

from dataclasses import dataclass

from .compute import one_cpu_thread
from .data import Bimodal
from .evaluation import (Result, Stopwatch, bimodal_scores, bimodal_summary, data_floor, majority_over_training,
                         train_arms)
from .fields import KernelField
from .methods import DriftConfig, Schedule
from .params import check_float, check_floats, check_int
from .reference_comparison import difference_rows, shape_over_training
from .reference_field import ReferenceKernelField


@dataclass(frozen=True)
class BimodalSettings:
    """What the two 2-D chapters share: seeds, steps, the two modes, the kernel temperature and the
    size of the evaluation sample."""

    seeds: int = 5
    steps: int = 2000
    separation: float = 4.0
    spread: float = 0.3
    temperature: float = 0.05                     # separation / tau = 80: plain drifting collapses
    n_eval: int = 2000

    def __post_init__(self):
        check_int("seeds", self.seeds, 1, 50)
        check_int("steps", self.steps, 1)
        check_float("separation", self.separation, 0)
        check_float("spread", self.spread, 0)
        check_float("temperature", self.temperature, 0)
        check_int("n_eval", self.n_eval, 10)

    @property
    def data(self) -> Bimodal:
        return Bimodal(self.separation, self.spread)


@dataclass(frozen=True)
class ModeCollapseSettings(BimodalSettings):
    large_temperature: float = 1.0
    multi_temperatures: tuple[float, ...] = (0.02, 0.05, 0.2)
    sweep_ratios: tuple[float, ...] = (4, 10, 20, 40, 80, 160)   # separation / temperature
    sweep_seeds: int = 3
    init_offset: tuple[float, float] = (0.0, 4.0)
    reference_floor: float = 1e-6                 # the released code's floor
    floors: tuple[float, ...] = (0.0, 1e-8, 1e-6, 1e-4, 1e-2)   # the floor sweep of the released field
    floor_seeds: int = 3

    def __post_init__(self):
        super().__post_init__()
        check_float("large_temperature", self.large_temperature, 0)
        check_floats("multi_temperatures", self.multi_temperatures)
        check_floats("sweep_ratios", self.sweep_ratios)
        check_int("sweep_seeds", self.sweep_seeds, 1, 50)
        check_float("reference_floor", self.reference_floor, 0, 0.1, low_open=False)
        if isinstance(self.floors, (int, float)) or not self.floors:
            raise ValueError(f"floors={self.floors!r} is not allowed: floors must be a non-empty list of numbers")
        object.__setattr__(self, "floors", tuple(check_float(f"floors[{i}]", f, 0, 0.1, low_open=False)
                                                 for i, f in enumerate(self.floors)))
        check_int("floor_seeds", self.floor_seeds, 1, 50)

    def released(self, floor: float | None = None) -> ReferenceKernelField:
        """The released code's field at the chapter's three temperatures (floor: theirs unless given)."""
        return ReferenceKernelField(tuple(self.multi_temperatures), self.reference_floor if floor is None else floor)

    def config(self, seed: int, field) -> DriftConfig:
        return DriftConfig(data=self.data, field=field, init_offset=tuple(self.init_offset),
                           schedule=Schedule(seed=seed, steps=self.steps, n_eval=self.n_eval))

    def fields(self) -> dict[str, tuple[object, str]]:
        """The chapter's arms: stable key -> (field, label)."""
        sep = lambda t: f"{self.separation / t:g}"  # noqa: E731
        return {
            "small_tau": (KernelField((self.temperature,)), f"τ={self.temperature:g} (sep/τ={sep(self.temperature)})"),
            "large_tau": (KernelField((self.large_temperature,)),
                          f"τ={self.large_temperature:g} (sep/τ={sep(self.large_temperature)})"),
            "multi_tau": (KernelField(tuple(self.multi_temperatures), scale_free=True),
                          "multi-τ, scale-free"),
            "released": (self.released(), f"released field, floor {self.reference_floor:g}"),
        }


PROFILES = {
    "ci": ModeCollapseSettings(seeds=3, steps=500, sweep_ratios=(4, 20, 80), sweep_seeds=2, floors=(0.0, 1e-6, 1e-2),
                               floor_seeds=2),
    "full": ModeCollapseSettings(),
}


@one_cpu_thread
def run(s: ModeCollapseSettings, device=None) -> Result:
    """Plain drifting from a disjoint start: three fields over seeds, and a separation/tau sweep."""
    clock = Stopwatch()
    held, floor = data_floor(s.data, s.n_eval)
    score = lambda r: bimodal_scores(r.final["samples"], s.data, held)  # noqa: E731
    plans = {key: (label, [s.config(i, field) for i in range(s.seeds)], score)
             for key, (field, label) in s.fields().items()}
    plans |= {f"sweep_{ratio:g}": (f"sep/τ={ratio:g}", [s.config(i, KernelField((s.separation / ratio,)))
                                                       for i in range(s.sweep_seeds)], score)
              for ratio in s.sweep_ratios}
    plans |= {f"floor_{f:g}": (f"released field, floor {f:g}", [s.config(i, s.released(f)) for i in range(s.floor_seeds)],
                               score) for f in s.floors}
    trained = train_arms(plans, device)        # every run of the chapter in one batch (shared workers)
    arms = {}
    for key in s.fields():
        arm = arms[key] = trained[key]
        arm.summary = bimodal_summary(arm.per_seed)
        arm.extra["majority_over_training"] = [majority_over_training(r, s.data) for r in arm.runs]
    sweep = {}
    for ratio in s.sweep_ratios:
        arm = trained[f"sweep_{ratio:g}"]
        sweep[ratio] = {"temperature": s.separation / ratio, "per_seed": arm.per_seed,
                        "summary": bimodal_summary(arm.per_seed)}
    floors, floor_runs = {}, {}
    for f in s.floors:
        arm = trained[f"floor_{f:g}"]
        arm.extra["majority_over_training"] = [majority_over_training(r, s.data) for r in arm.runs]
        floors[f] = {"per_seed": arm.per_seed, "summary": bimodal_summary(arm.per_seed),
                     "majority_over_training": arm.extra["majority_over_training"]}
        floor_runs[f] = arm.runs[0]
    measured = {"sweep": sweep, "floor_energy": floor, "floor_sweep": floors,
                **released_measurements(s, arms["released"].runs[0], held)}
    return Result(arms, measured, arms["small_tau"].runs[0].steps, clock.seconds(),
                  runs={f"floor {f:g}": r for f, r in floor_runs.items()})


def released_measurements(s: ModeCollapseSettings, run, held) -> dict:
    """Seed 0 of the released-field arm: how its field differs from the book's, switch by switch, at
    its first and last frame; and, at every frame of that run, where the released field points with
    and without the floor (at the data's mean, or outward, spreading the samples)."""
    y, temps = held[: run.frames["samples"].shape[1]], s.multi_temperatures
    frames = run.frames["samples"]
    return {"differences": difference_rows(frames[0], frames[-1], y, temps),
            "field_shape": shape_over_training(frames, y, temps, (0.0, s.reference_floor))}


# ---------------------------------------------------------------------------------------------
# what the notebook shows

COLUMNS = {"arm": "field", "seed": "seed", "fractions": "share per mode (left, right)",
           "modes_held": "modes with ≥ 10 %", "far": "share > 4σ from both modes",
           "energy": "energy distance to held-out data", "train_seconds": "train time (s)"}


def seed_rows(result: Result) -> list[dict]:
    return [{"arm": arm.label, **p} for arm in result.arms.values() for p in arm.per_seed]


def majority_lines(result: Result) -> dict[str, list[float]]:
    return {f"{arm.label} · seed {i}": share for arm in result.arms.values()
            for i, share in enumerate(arm.extra["majority_over_training"])}


def measured_text(result: Result, s: ModeCollapseSettings) -> str:
    small, large, multi = (result.arms[k].summary for k in ("small_tau", "large_tau", "multi_tau"))
    floor = result.measured["floor_energy"]
    return (
        f"**Measured.** With the small temperature, {small['collapsed_seeds']} of {small['seeds']} seeds end with "
        f"at least 95 % of their samples in one mode (mean share of the larger mode "
        f"{small['majority']['mean']:.3f}, energy distance {small['energy']['mean']:.3f} ± {small['energy']['std']:.3f}). "
        f"With τ = {s.large_temperature:g}, {large['both_modes_seeds']} of {large['seeds']} seeds hold both modes "
        f"(larger-mode share {large['majority']['mean']:.3f}, energy distance {large['energy']['mean']:.4f}); "
        f"with the multi-temperature scale-free field, {multi['both_modes_seeds']} of {multi['seeds']} "
        f"(share {multi['majority']['mean']:.3f}, energy distance {multi['energy']['mean']:.4f}). "
        f"The data-vs-data floor is {floor:.4f}.")


def sweep_lines(result: Result) -> dict[str, list[float]]:
    sweep = result.measured["sweep"].values()
    return {"share of seeds collapsed": [v["summary"]["collapsed_seeds"] / v["summary"]["seeds"] for v in sweep],
            "mean share of the larger mode": [v["summary"]["majority"]["mean"] for v in sweep]}


SWEEP_COLUMNS = {"ratio": "separation / τ", "tau": "τ", "collapsed": "seeds collapsed",
                 "majority": "mean larger-mode share", "energy": "mean energy distance"}


def sweep_rows(result: Result) -> list[dict]:
    return [{"ratio": r, "tau": v["temperature"], "collapsed": f"{v['summary']['collapsed_seeds']} / {v['summary']['seeds']}",
             "majority": v["summary"]["majority"]["mean"], "energy": v["summary"]["energy"]["mean"]}
            for r, v in result.measured["sweep"].items()]
