"""Chapter 1, mode collapse of plain drifting: settings, profiles and ``run``."""
from __future__ import annotations

from dataclasses import dataclass

from chartlib.common.checks import check_float, check_floats, check_int
from chartlib.core.fields import KernelField, ReleasedKernelField
from chartlib.core.methods import DriftConfig
from chartlib.core.training import Schedule
from chartlib.measure.released import difference_rows, shape_over_training
from chartlib.measure.scores import bimodal_scores, bimodal_summary, data_baseline, majority_over_training
from chartlib.runs.arms import Plan, Result, Stopwatch, train_arms
from chartlib.runs.workers import one_cpu_thread

from .bimodal import BimodalSettings

TITLE = "Mode collapse"


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

    def released(self, floor: float | None = None) -> ReleasedKernelField:
        """The released code's field at the chapter's three temperatures (floor: theirs unless given)."""
        return ReleasedKernelField(tuple(self.multi_temperatures), self.reference_floor if floor is None else floor)

    def config(self, seed: int, field) -> DriftConfig:
        return DriftConfig(data=self.data, field=field, init_offset=tuple(self.init_offset),
                           schedule=Schedule(seed=seed, steps=self.steps, n_eval=self.n_eval))

    def arm(self, label: str, field, seeds: int) -> Plan:
        return Plan(label, [self.config(i, field) for i in range(seeds)])

    def arms(self) -> dict[str, Plan]:
        """The chapter's arms by stable key: one field each, over ``seeds`` seeds."""
        def sep(t):
            return f"{self.separation / t:g}"

        return {
            "small_tau": self.arm(f"τ={self.temperature:g} (sep/τ={sep(self.temperature)})",
                                  KernelField((self.temperature,)), self.seeds),
            "large_tau": self.arm(f"τ={self.large_temperature:g} (sep/τ={sep(self.large_temperature)})",
                                  KernelField((self.large_temperature,)), self.seeds),
            "multi_tau": self.arm("multi-τ, scale-free", KernelField(tuple(self.multi_temperatures), scale_free=True),
                                  self.seeds),
            "released": self.arm(f"released field, floor {self.reference_floor:g}", self.released(), self.seeds),
        }

    def sweep_arms(self) -> dict[str, Plan]:
        """The separation / temperature sweep (one temperature each) and the released field's floor sweep."""
        sweep = {f"sweep_{ratio:g}": self.arm(f"sep/τ={ratio:g}", KernelField((self.separation / ratio,)),
                                              self.sweep_seeds) for ratio in self.sweep_ratios}
        floors = {f"floor_{f:g}": self.arm(f"released field, floor {f:g}", self.released(f), self.floor_seeds)
                  for f in self.floors}
        return sweep | floors


PROFILES = {
    "ci": ModeCollapseSettings(seeds=3, steps=500, sweep_ratios=(4, 20, 80), sweep_seeds=2, floors=(0.0, 1e-6, 1e-2),
                               floor_seeds=2),
    "full": ModeCollapseSettings(),
}


@one_cpu_thread
def run(s: ModeCollapseSettings, device=None) -> Result:
    """Plain drifting from a disjoint start: three fields over seeds, and a separation/tau sweep."""
    clock = Stopwatch()
    held, baseline = data_baseline(s.data, s.n_eval)

    def score(cfg, run):
        return bimodal_scores(run.final["samples"], s.data, held)

    main = s.arms()
    trained = train_arms(main | s.sweep_arms(), score, device)   # every run of the chapter in one batch
    arms = {}
    for key in main:
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
    measured = {"sweep": sweep, "floor_energy": baseline, "floor_sweep": floors,
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
