"""The training loop and the small pieces it calls.

``optimise`` only optimises: each step it calls the method's ``step`` (which returns its losses as
0-d tensors, ``"loss"`` the one to minimise), then backward and one Adam step over the trained
modules.  Everything else is a piece of its own:

* ``Recorder``: frames of the samples at the slider's steps, and the final evaluation sample;
* ``Guard``: the losses of every step, read from the device only every ``check_every`` steps (one
  host sync, not one per step), each check testing losses and parameters for NaN / infinity; a
  failure names the run and the first bad step, and nothing is returned (so nothing is cached);
* ``Progress`` (from ``chartlib.common.progress``): a bar interactively, one line per run under the build.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from chartlib.common.checks import check_choice, check_float, check_int
from chartlib.common.progress import Progress

PRECISIONS = ("float32", "bfloat16")
LR_SCHEDULES = ("constant", "cosine")


class TrainingDiverged(RuntimeError):
    """A loss or a parameter became NaN or infinite."""


@dataclass(frozen=True)
class Schedule:
    """What every method shares: seed, optimisation and what to record."""

    seed: int = 0
    steps: int = 2000
    batch: int = 256
    lr: float = 1e-3
    width: int = 128
    depth: int = 3
    n_snapshots: int = 21    # frames for the training-step slider (first and last included)
    n_show: int = 400        # points per frame
    n_eval: int = 2000       # points in the final evaluation sample
    precision: str = "float32"   # "bfloat16": the networks' forward passes under autocast (see methods.py)
    lr_schedule: str = "constant"  # "cosine": the rate decays from lr to 0 over the steps (half a cosine)

    def __post_init__(self):
        check_int("seed", self.seed, 0)
        check_int("steps", self.steps, 1)
        check_int("batch", self.batch, 2)
        check_float("lr", self.lr, 0)
        check_int("width", self.width, 1)
        check_int("depth", self.depth, 1)
        check_int("n_snapshots", self.n_snapshots, 2, self.steps + 1)
        check_int("n_show", self.n_show, 2)
        check_int("n_eval", self.n_eval, 2)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)

    def snapshot_steps(self) -> list[int]:
        """Training steps at which frames are recorded, 0 (before training) to ``steps``."""
        s = torch.linspace(0, self.steps, self.n_snapshots).round().long().tolist()
        return sorted(set(s))


@dataclass
class Run:
    """The outcome of one training run.

    ``frames[name]`` has shape (len(steps), n_show, k); ``final[name]`` has shape (n_eval, k);
    ``history[name]`` holds one float per training step; ``state[name]`` is a module state dict.
    """

    method: str
    config: dict
    steps: list[int]
    frames: dict[str, torch.Tensor]
    final: dict[str, torch.Tensor]
    history: dict[str, list[float]]
    state: dict[str, dict]
    seconds: float
    device: str
    cached: bool = False


class Recorder:
    """Frames of ``record(n_show)`` at the schedule's snapshot steps, and ``record(n_eval)`` at the end.
    ``record(n)`` returns named tensors (n, k); frames are kept as float32 on the CPU."""

    def __init__(self, schedule: Schedule, record: Callable[[int], dict[str, torch.Tensor]]):
        self.schedule, self.record = schedule, record
        self.steps = schedule.snapshot_steps()
        self.frames: dict[str, list[torch.Tensor]] = {}

    def __call__(self, step: int):
        if step in self.steps:
            with torch.no_grad():
                for k, v in self.record(self.schedule.n_show).items():
                    self.frames.setdefault(k, []).append(v.detach().float().cpu())

    def stacked(self) -> dict[str, torch.Tensor]:
        return {k: torch.stack(v) for k, v in self.frames.items()}

    def final(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {k: v.detach().float().cpu() for k, v in self.record(self.schedule.n_eval).items()}


class Guard:
    """Keeps each step's losses on the device and checks them, with the parameters, every
    ``check_every`` steps and at the end: one host sync per check.  ``history`` is the loss record
    as Python floats once ``check`` has run."""

    def __init__(self, label: str, params: list[torch.Tensor], check_every: int = 50):
        self.label, self.params, self.check_every = label, params, check_int("check_every", check_every, 1)
        self.pending: dict[str, list[torch.Tensor]] = {}
        self.history: dict[str, list[float]] = {}
        self.checked = 0      # steps already moved to history

    def add(self, losses: dict[str, torch.Tensor]):
        for k, v in losses.items():
            self.pending.setdefault(k, []).append(v.detach())

    def due(self, step: int) -> bool:
        return step % self.check_every == 0

    def check(self, lr: float) -> float:
        """Move the pending losses to ``history``; raise TrainingDiverged at the first bad step.
        Returns the latest total loss."""
        if not self.pending:
            return float("nan")
        stacked = {k: torch.stack(v) for k, v in self.pending.items()}
        bad = ~torch.isfinite(stacked["loss"])
        params_ok = (torch.stack([torch.isfinite(p).all() for p in self.params]).all() if self.params
                     else torch.tensor(True))
        any_bad, params_ok = torch.stack([bad.any().cpu(), params_ok.cpu()]).tolist()   # the one host sync
        if any_bad:
            first = int(bad.nonzero()[0, 0])
            raise TrainingDiverged(
                f"{self.label}: loss became {float(stacked['loss'][first])} at step {self.checked + first}; "
                f"nothing was cached. Lower lr (now {lr}) or check the data and temperatures.")
        if not params_ok:
            raise TrainingDiverged(f"{self.label}: a parameter became non-finite between step {self.checked} and "
                                   f"step {self.checked + len(stacked['loss']) - 1}; nothing was cached.")
        for k, v in stacked.items():
            self.history.setdefault(k, []).extend(v.float().cpu().tolist())
        self.checked += len(stacked["loss"])
        self.pending = {}
        return self.history["loss"][-1]


def optimise(label: str, schedule: Schedule, step: Callable[[int], dict[str, torch.Tensor]],
             trained: list[nn.Module], recorder: Recorder, check_every: int = 50) -> tuple[dict, dict, dict, float]:
    """Adam on the parameters of ``trained`` for ``schedule.steps`` steps of ``step(it)``.

    Returns (frames, final sample, history, seconds), the seconds including the final sample."""
    params = [p for m in trained for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=schedule.lr)
    cosine = schedule.lr_schedule == "cosine"
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, schedule.steps) if cosine else None
    guard, progress = Guard(label, params, check_every), Progress(label, schedule.steps)
    start = time.perf_counter()
    for it in range(schedule.steps):
        recorder(it)
        losses = step(it)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        opt.step()
        if decay is not None:
            decay.step()
        guard.add(losses)
        if guard.due(it + 1):
            progress.update(it + 1, guard.check(schedule.lr))
    guard.check(schedule.lr)
    recorder(schedule.steps)
    final = recorder.final()
    seconds = time.perf_counter() - start
    progress.close(seconds)
    return recorder.stacked(), final, guard.history, seconds


def train(method: str, label: str, cfg, step: Callable[[int], dict[str, torch.Tensor]], trained: list[nn.Module],
          saved: dict[str, nn.Module], record: Callable[[int], dict[str, torch.Tensor]], device) -> Run:
    """``optimise`` the ``trained`` modules and pack the Run; ``saved`` are the modules whose weights
    it keeps (on the CPU), which may include modules trained by their own optimiser (a critic)."""
    recorder = Recorder(cfg.schedule, record)
    frames, final, history, seconds = optimise(label, cfg.schedule, step, trained, recorder)
    return Run(method=method, config=asdict(cfg), steps=recorder.steps, frames=frames, final=final, history=history,
               state={k: {n: t.detach().cpu() for n, t in m.state_dict().items()} for k, m in saved.items()},
               seconds=seconds, device=str(device))
