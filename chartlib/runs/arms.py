"""A chapter's arms: the runs of each arm trained (or loaded) through the run cache as one batch and
scored, and the ``Arm`` / ``Result`` records chapters return (stable keys; labels are for display)."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chartlib.core.training import Run

from .cache import cached_all


@dataclass(frozen=True)
class Plan:
    """One arm to train: its label (for display), one config per seed, and facts about the arm kept
    with its record (``Arm.extra``)."""

    label: str
    configs: list
    facts: dict = field(default_factory=dict)


@dataclass
class Arm:
    """One arm of a chapter: its runs (one per seed), per-seed scores, their summary over seeds, and
    any further per-run series (``extra``).  ``key`` is stable; ``label`` is for display only."""

    key: str
    label: str
    runs: list[Run]
    per_seed: list[dict]
    summary: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def record(self) -> dict:
        """The arm as JSON-ready data (no Run objects)."""
        return {"label": self.label, "per_seed": self.per_seed, "summary": self.summary, **self.extra}


@dataclass
class Result:
    """A chapter's outcome: its arms by key, further measurements, the frame steps, the wall time,
    and further runs the chapter shows (seed 0 of a sweep's settings, by label)."""

    arms: dict[str, Arm]
    measured: dict
    steps: list[int]
    wall_seconds: float
    runs: dict[str, Run] = field(default_factory=dict)

    def record(self) -> dict:
        return {"arms": {k: a.record() for k, a in self.arms.items()}, **self.measured, "steps": self.steps,
                "wall_seconds": self.wall_seconds}


class Stopwatch:
    def __init__(self):
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start


def train_arms(plans: dict[str, Plan], score: Callable[[object, Run], dict], device=None,
               workers: int | None = None) -> dict[str, Arm]:
    """Train (or load) every arm of ``plans`` through the run cache as one batch, then score each run:
    ``score(config, run)`` gives that seed's measurements.

    Progress bars and errors name the arm and seed.  The runs missing from the cache train side by
    side in ``workers`` processes (``chartlib.runs.cache.cached_all``; default
    ``chartlib.runs.workers.default_workers``), all arms' runs sharing the workers, so a chapter with
    many small arms keeps every core busy; each run's result is the same however it trained."""
    configs = [c for plan in plans.values() for c in plan.configs]
    labels = [f"{plan.label} · seed {c.schedule.seed}" for plan in plans.values() for c in plan.configs]
    runs = iter(cached_all(configs, device=device, labels=labels, workers=workers))
    arms = {}
    for key, plan in plans.items():
        arm_runs = [next(runs) for _ in plan.configs]
        per_seed = [{"seed": c.schedule.seed, **score(c, r), "train_seconds": r.seconds}
                    for c, r in zip(plan.configs, arm_runs)]
        arms[key] = Arm(key, plan.label, arm_runs, per_seed, extra=dict(plan.facts))
    return arms
