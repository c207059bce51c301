"""What chapters 3 and 4 (space filling, stochastic encoding) share: a mixture on a 2-D surface in 3-D,
one settings class and its profiles, and training the arms of either chapter."""
from __future__ import annotations

from dataclasses import dataclass

from chartlib.common.checks import check_float, check_floats, check_int
from chartlib.core.data import SurfaceMixture
from chartlib.core.encoders import Deterministic, Gaussian
from chartlib.core.fields import CriticField, KernelField
from chartlib.core.methods import ChartConfig
from chartlib.core.training import Schedule
from chartlib.measure import metrics
from chartlib.measure.scores import data_baseline, surface_scores, surface_summary
from chartlib.runs.arms import Plan, Result, Stopwatch, train_arms
from chartlib.runs.workers import one_cpu_thread


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

    def arm(self, label: str, encoder, field, weight: float, seeds: int) -> Plan:
        return Plan(label, [self.config(i, encoder, field, weight) for i in range(seeds)])

    def arms(self, stochastic: bool) -> dict[str, Plan]:
        """The arms of chapter 3 (or 4, ``stochastic``) by stable key."""
        kernel = KernelField(tuple(self.temperatures), self.scale_free)
        fiber = Gaussian(self.init_log_scale)
        out = {"deterministic": self.arm("deterministic", Deterministic(), kernel, self.drift_weight, self.seeds)}
        if stochastic:
            out["kernel"] = self.arm("stochastic, kernel field", fiber, kernel, self.drift_weight, self.seeds)
            critic = CriticField(self.critic_noise, self.critic_steps)
            out["critic"] = self.arm("stochastic, critic field", fiber, critic, self.critic_weight, self.seeds)
            out["failing_critic"] = self.arm(f"stochastic, critic at noise {self.failing_noise:g}, "
                                             f"{self.failing_steps} step", fiber,
                                             CriticField(self.failing_noise, self.failing_steps), self.critic_weight, 1)
        return out


PROFILES = {
    "ci": SurfaceSettings(seeds=2, steps=1000),
    "full": SurfaceSettings(),
}


@one_cpu_thread
def train(s: SurfaceSettings, stochastic: bool, device=None) -> Result:
    """Chapter 3 (``stochastic=False``): the deterministic 3-D chart.  Chapter 4: the same, plus the
    stochastic chart with the kernel field, with the critic field, and the critic's failure setting."""
    clock = Stopwatch()
    data = s.data
    held, baseline = data_baseline(data, s.n_eval)

    def score(cfg, run):
        return surface_scores(run, data, held, s.thresholds)

    arms = train_arms(s.arms(stochastic), score, device)
    for arm in arms.values():
        arm.summary = surface_summary(arm.per_seed, s.thresholds)
    held_dist = data.distance_to_surface(held)
    measured = {"floor_energy": baseline, "thresholds": list(s.thresholds),
                "data_latent_dimension_reference": metrics.two_nn_dimension(held),
                "floor_off_surface": {str(t): metrics.off_surface_rate(held_dist, t) for t in s.thresholds}}
    return Result(arms, measured, arms["deterministic"].runs[0].steps, clock.seconds())
