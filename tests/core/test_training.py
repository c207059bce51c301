"""The training loop: divergence is caught at the right step with few host syncs, the history is
complete, and only the trained modules reach the main optimiser."""
from dataclasses import dataclass, field, replace

import pytest
import torch

from chartlib.core import training
from chartlib.core.data import Bimodal
from chartlib.core.encoders import Gaussian
from chartlib.core.fields import CriticField, KernelField
from chartlib.core.methods import ChartConfig, DriftConfig, method_for, train_run
from chartlib.core.training import Guard, Schedule, TrainingDiverged

TINY = Schedule(seed=0, steps=120, batch=32, width=16, depth=1, n_snapshots=3, n_show=20, n_eval=40)


pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass(frozen=True)
class NaNFrom(Bimodal):
    """Bimodal data whose ``sample`` returns a NaN from its ``start``-th call on (0-based)."""

    start: int = 0
    calls: list = field(default_factory=list, compare=False)

    def sample(self, n, generator=None):
        out = super().sample(n, generator)
        self.calls.append(n)
        if len(self.calls) > self.start:
            out[0, 0] = float("nan")
        return out


def test_nan_in_the_data_stops_at_step_0_naming_the_run():
    with pytest.raises(TrainingDiverged, match=r"^drift seed 0: loss became nan at step 0; nothing was cached"):
        train_run(DriftConfig(data=NaNFrom(start=0), schedule=TINY), device="cpu")


def test_a_custom_label_names_the_run_in_the_error():
    cfg = ChartConfig(data=NaNFrom(start=0), schedule=TINY)
    with pytest.raises(TrainingDiverged, match=r"^chart transport · seed 0: loss became nan at step 0"):
        train_run(cfg, device="cpu", label="chart transport · seed 0")


@pytest.mark.parametrize("bad_step", [1, 49, 50, 73, 119])
def test_a_nan_at_step_k_is_reported_at_step_k(bad_step, monkeypatch):
    """Plain drifting draws its positives once per step (call i is step i); the guard reads the losses
    only every 50 steps, yet names the first bad one."""
    checked_at = []
    real_check = Guard.check

    def spy(self, lr):
        checked_at.append(self.checked + len(self.pending.get("loss", [])))
        return real_check(self, lr)

    monkeypatch.setattr(Guard, "check", spy)
    data = NaNFrom(start=bad_step)
    with pytest.raises(TrainingDiverged, match=rf"loss became nan at step {bad_step};"):
        train_run(DriftConfig(data=data, schedule=TINY), device="cpu")
    assert len(data.calls) == min(TINY.steps, (bad_step // 50 + 1) * 50)   # training ran on to the next check
    assert checked_at[-1] == len(data.calls)


def test_the_guard_checks_once_per_check_every_steps(monkeypatch):
    checks, syncs = [], []
    real_check, real_isfinite = Guard.check, torch.isfinite

    def spy(self, lr):
        checks.append((self.checked, len(self.pending.get("loss", []))))
        return real_check(self, lr)

    def counting_isfinite(t):
        syncs.append(1)
        return real_isfinite(t)

    monkeypatch.setattr(Guard, "check", spy)
    monkeypatch.setattr(training.torch, "isfinite", counting_isfinite)
    run = train_run(DriftConfig(schedule=TINY, field=KernelField((1.0,))), device="cpu")
    monkeypatch.undo()
    # steps 1-50, 51-100, then 101-120 at the end: three checks, each moving its whole chunk at once
    assert checks == [(0, 50), (50, 50), (100, 20)]
    n_params = len(list(method_for(DriftConfig(schedule=TINY), "cpu").net.parameters()))
    # finiteness is tested only at checks: the same few calls per check (losses once, parameters at
    # most once each), never per step
    assert len(syncs) % 3 == 0 and 1 <= len(syncs) // 3 <= 1 + n_params
    assert len(run.history["loss"]) == TINY.steps


def test_guard_unit_history_and_first_bad_step():
    w = torch.nn.Parameter(torch.ones(3))
    g = Guard("unit", [w], check_every=4)
    assert [g.due(s) for s in range(1, 9)] == [False, False, False, True] * 2
    assert g.check(1e-3) != g.check(1e-3) and g.history == {}     # nothing pending: nan, no error
    for v in (1.0, 2.0, 3.0, 4.0):
        g.add({"loss": torch.tensor(v), "part": torch.tensor(v / 2)})
    assert g.check(1e-3) == 4.0
    assert g.history == {"loss": [1.0, 2.0, 3.0, 4.0], "part": [0.5, 1.0, 1.5, 2.0]} and g.checked == 4
    for v in (5.0, float("inf"), float("nan")):
        g.add({"loss": torch.tensor(v), "part": torch.tensor(0.0)})
    with pytest.raises(TrainingDiverged, match=r"^unit: loss became inf at step 5; .*lr \(now 0.001\)"):
        g.check(1e-3)
    with pytest.raises(ValueError, match="check_every=0 is not allowed"):
        Guard("x", [], check_every=0)


def test_guard_catches_a_non_finite_parameter():
    w = torch.nn.Parameter(torch.tensor([1.0, float("nan")]))
    g = Guard("unit", [w], check_every=10)
    g.add({"loss": torch.tensor(1.0)})
    g.add({"loss": torch.tensor(1.0)})
    with pytest.raises(TrainingDiverged, match="unit: a parameter became non-finite between step 0 and step 1"):
        g.check(1e-3)


@pytest.mark.parametrize("cfg, keys", [
    (DriftConfig(schedule=replace(TINY, steps=30)), {"loss"}),
    (ChartConfig(schedule=replace(TINY, steps=30)), {"loss", "recon", "drift"}),
    (ChartConfig(schedule=replace(TINY, steps=30), encoder=Gaussian(), field=CriticField(steps=1, width=8, depth=1)),
     {"loss", "recon", "drift", "sigma", "critic"}),
])
def test_history_holds_one_float_per_step(cfg, keys):
    run = train_run(cfg, device="cpu")
    assert set(run.history) == keys
    for name, values in run.history.items():
        assert len(values) == 30 and all(type(v) is float for v in values), name


def _spy_adam(monkeypatch) -> list[set[int]]:
    made = []

    class Spy(torch.optim.Adam):
        def __init__(self, params, *a, **k):
            params = list(params)
            made.append({id(p) for p in params})
            super().__init__(params, *a, **k)

    monkeypatch.setattr(torch.optim, "Adam", Spy)
    return made


def test_only_the_trained_modules_reach_the_main_optimiser(monkeypatch):
    made = _spy_adam(monkeypatch)
    cfg = ChartConfig(schedule=replace(TINY, steps=10), encoder=Gaussian(),
                      field=CriticField(steps=2, width=8, depth=1))
    m = method_for(cfg, "cpu")
    critic_params = {id(p) for p in m.field.net.parameters()}
    chart_params = {id(p) for mod in (m.enc, m.dec) for p in mod.parameters()}
    before = [p.detach().clone() for p in m.field.net.parameters()]
    run = m.fit()
    assert made == [critic_params, chart_params]    # the critic's own Adam, then the main one without it
    assert set(run.state) == {"encoder", "decoder", "critic"}
    saved = run.state["critic"]                      # saved, and trained (by its own optimiser)
    assert all(torch.equal(saved[k], v.cpu()) for k, v in m.field.net.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(before, m.field.net.parameters()))


def test_a_kernel_field_saves_no_critic(monkeypatch):
    made = _spy_adam(monkeypatch)
    m = method_for(ChartConfig(schedule=replace(TINY, steps=5), encoder=Gaussian()), "cpu")
    run = m.fit()
    assert set(run.state) == {"encoder", "decoder"} and "critic" not in run.history
    assert made == [{id(p) for mod in (m.enc, m.dec) for p in mod.parameters()}]


def test_frames_at_the_snapshot_steps_and_one_line_per_run(capsys):
    s = replace(TINY, steps=10, n_snapshots=3)
    run = train_run(ChartConfig(schedule=s), device="cpu", label="my chart")
    assert run.steps == s.snapshot_steps() == [0, 5, 10]
    assert run.frames["latents"].shape == (3, 20, 2) and run.final["latents"].shape == (40, 2)
    assert not torch.equal(run.frames["latents"][0], run.frames["latents"][-1])   # frames follow training
    assert torch.equal(run.frames["data"][0], run.frames["data"][-1])             # of the same points
    out = capsys.readouterr().out
    assert out.count("trained my chart: 10 steps in ") == 1 and "\r" not in out


def test_the_interactive_progress_bar_is_text_not_a_widget(monkeypatch, capsys):
    """A notebook widget bar is saved as a reference to a widget model the saved notebook does not
    hold ("Error displaying widget: model not found" on reopening): the bar must be tqdm's text bar."""
    import tqdm.auto
    from tqdm.notebook import tqdm as widget_bar

    from chartlib.common.progress import Progress
    monkeypatch.setattr(tqdm.auto, "tqdm", widget_bar)    # what tqdm.auto gives inside a Jupyter kernel
    monkeypatch.setenv("CHARTLIB_PROGRESS", "bar")
    p = Progress("arm · seed 0", 10)
    assert p.bar is not None and not isinstance(p.bar, widget_bar)
    p.update(10, 0.5)
    p.close(1.0)
    assert "arm · seed 0" in capsys.readouterr().out
