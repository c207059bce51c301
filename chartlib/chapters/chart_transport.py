"""Chapter 2, chart transport and the flow-matching baseline: settings, profiles and ``run``."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from chartlib.common.checks import check_float, check_floats, check_int
from chartlib.core.fields import KernelField, ReleasedKernelField
from chartlib.core.methods import ChartConfig, FlowConfig, euler_sample, restore
from chartlib.core.training import Schedule
from chartlib.measure.scores import (
    bimodal_scores,
    bimodal_summary,
    chart_fit,
    data_baseline,
    majority_over_training,
    sampling_rate,
)
from chartlib.runs.arms import Plan, Result, Stopwatch, train_arms
from chartlib.runs.workers import one_cpu_thread

from .bimodal import BimodalSettings

TITLE = "Chart transport"


@dataclass(frozen=True)
class ChartTransportSettings(BimodalSettings):
    drift_weight: float = 1.0
    latent_offset: tuple[float, float] = (6.0, 0.0)     # the "offset encoder" control
    weight_sweep: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)
    weight_sweep_seeds: int = 3
    euler_steps: int = 50
    reference_temperatures: tuple[float, ...] = (0.02, 0.05, 0.2)   # the released code's field
    reference_floor: float = 1e-6
    reference_seeds: int = 3

    def __post_init__(self):
        super().__post_init__()
        check_float("drift_weight", self.drift_weight, 0, low_open=False)
        check_floats("weight_sweep", self.weight_sweep)
        check_int("weight_sweep_seeds", self.weight_sweep_seeds, 1, 50)
        check_int("euler_steps", self.euler_steps, 1, 1000)
        check_floats("reference_temperatures", self.reference_temperatures)
        check_float("reference_floor", self.reference_floor, 0, 0.1, low_open=False)
        check_int("reference_seeds", self.reference_seeds, 1, 50)

    def released(self, floor: float) -> ReleasedKernelField:
        return ReleasedKernelField(tuple(self.reference_temperatures), floor)

    def schedule(self, seed: int) -> Schedule:
        return Schedule(seed=seed, steps=self.steps, n_eval=self.n_eval)

    def chart_config(self, seed: int, **changes) -> ChartConfig:
        base = ChartConfig(data=self.data, field=KernelField((self.temperature,)), drift_weight=self.drift_weight,
                           schedule=self.schedule(seed))
        return replace(base, **changes)

    def flow_config(self, seed: int) -> FlowConfig:
        return FlowConfig(data=self.data, euler_steps=self.euler_steps, schedule=self.schedule(seed))

    def arms(self) -> dict[str, Plan]:
        """The chapter's arms by stable key: chart transport, its controls, flow matching, the released field."""
        seeds, released = range(self.seeds), range(self.reference_seeds)
        return {
            CHART: Plan("chart transport", [self.chart_config(i) for i in seeds]),
            OFFSET: Plan("chart, offset encoder",
                         [self.chart_config(i, latent_offset=tuple(self.latent_offset)) for i in seeds]),
            DETACHED: Plan("chart, detached reconstruction", [self.chart_config(0, detach_recon=True)]),
            FLOW: Plan("flow matching", [self.flow_config(i) for i in seeds]),
            RELEASED: Plan(f"chart, released code's field (floor {self.reference_floor:g})",
                           [self.chart_config(i, field=self.released(self.reference_floor)) for i in released]),
            RELEASED_NO_FLOOR: Plan("chart, released code's field without its floor",
                                    [self.chart_config(i, field=self.released(0.0)) for i in released]),
        }

    def sweep_arms(self) -> dict[str, Plan]:
        """The drift weight λ, swept."""
        return {f"lambda_{lam:g}": Plan(f"λ={lam:g}", [self.chart_config(i, drift_weight=lam)
                                                       for i in range(self.weight_sweep_seeds)])
                for lam in self.weight_sweep}


PROFILES = {
    "ci": ChartTransportSettings(seeds=3, steps=500, weight_sweep=(0.1, 1.0), weight_sweep_seeds=1, reference_seeds=1),
    "full": ChartTransportSettings(),
}

CHART, OFFSET, DETACHED, FLOW = "chart", "offset_encoder", "detached_recon", "flow"
RELEASED, RELEASED_NO_FLOOR = "released", "released_no_floor"


@one_cpu_thread
def run(s: ChartTransportSettings, device=None) -> Result:
    """Chart transport vs its controls (offset encoder, detached reconstruction) and flow matching."""
    clock = Stopwatch()
    held, baseline = data_baseline(s.data, s.n_eval)

    def score(cfg, run):
        modes = bimodal_scores(run.final["samples"], s.data, held)
        return {**modes, **chart_fit(run)} if isinstance(cfg, ChartConfig) else modes

    main = s.arms()
    trained = train_arms(main | s.sweep_arms(), score, device)   # every run of the chapter in one batch
    arms = {key: trained[key] for key in main}
    for key, arm in arms.items():
        arm.summary = bimodal_summary(arm.per_seed)
        if key != FLOW:
            arm.extra["majority_over_training"] = [majority_over_training(r, s.data) for r in arm.runs]
    weight_sweep = {}
    for lam in s.weight_sweep:
        arm = trained[f"lambda_{lam:g}"]
        weight_sweep[lam] = {"per_seed": arm.per_seed, "summary": bimodal_summary(arm.per_seed)}
    cost = sampling_cost(s, arms[CHART].runs[0], arms[FLOW].runs[0], device)
    return Result(arms, {"weight_sweep": weight_sweep, "floor_energy": baseline, "sampling_cost": cost},
                  arms[CHART].runs[0].steps, clock.seconds())


def sampling_cost(s: ChartTransportSettings, chart_run, flow_run, device=None) -> dict:
    """Samples per second: one decoder call against ``euler_steps`` velocity calls, on ``device``."""
    device = torch.device(device or "cpu")
    dec = restore(s.chart_config(0), chart_run, device).dec
    vel = restore(s.flow_config(0), flow_run, device).net

    def noise(n):
        return torch.randn(n, 2, device=device)

    def flow_samples(n):
        return euler_sample(vel, noise(n), s.euler_steps)

    return {"chart": {"network_evaluations": 1,
                      "samples_per_second": sampling_rate(lambda n: dec(noise(n)), device=device)},
            "flow matching": {"network_evaluations": s.euler_steps,
                              "samples_per_second": sampling_rate(flow_samples, device=device)}}
