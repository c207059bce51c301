"""Smoke tests of every method on tiny problems: shapes, finiteness, learning, errors."""
from dataclasses import replace

import pytest
import torch

from chartlib import metrics
from chartlib.data import Bimodal
from chartlib.fields import KernelField
from chartlib.methods import (Chart, ChartConfig, DriftConfig, Flow, FlowConfig, PlainDrift, Schedule,
                              TrainingDiverged, method_for, train_run)

TINY = Schedule(seed=0, steps=60, batch=64, width=32, depth=2, n_snapshots=4, n_show=50, n_eval=300, lr=3e-3)


def test_plain_drifting_shapes_and_learning():
    cfg = DriftConfig(schedule=TINY, field=KernelField((1.0,)))
    run = train_run(cfg, device="cpu")
    assert run.method == "drift"
    assert run.steps == [0, 20, 40, 60]
    assert run.frames["samples"].shape == (4, 50, 2)
    assert run.final["samples"].shape == (300, 2)
    assert all(torch.isfinite(torch.tensor(run.history["loss"])))
    assert set(run.state) == {"generator"}
    held = cfg.data.sample(300, torch.Generator().manual_seed(5))
    first, last = (metrics.energy_distance(run.frames["samples"][i], held[:50]) for i in (0, -1))
    assert last < 0.5 * first   # the samples moved towards the data


def test_chart_transport_shapes_and_learning():
    cfg = ChartConfig(schedule=replace(TINY, steps=150), field=KernelField((0.5,)))
    run = train_run(cfg, device="cpu")
    assert run.method == "chart"
    for key, k in {"data": 2, "latents": 2, "recon": 2, "prior": 2, "samples": 2}.items():
        assert run.frames[key].shape == (4, 50, k) and run.final[key].shape == (300, k)
    recon = run.history["recon"]
    assert sum(recon[-10:]) / 10 < 0.5 * sum(recon[:10]) / 10
    assert set(run.state) == {"encoder", "decoder"}


def test_chart_latent_dimension_and_offset():
    cfg = ChartConfig(schedule=replace(TINY, steps=5), latent_dim=3, latent_offset=(6.0, 0.0, 0.0))
    run = train_run(cfg, device="cpu")
    assert run.frames["latents"].shape == (4, 50, 3)
    assert run.frames["latents"][0, :, 0].mean() > 4   # the offset encoder starts far from the prior


def test_flow_matching_shapes_and_learning():
    cfg = FlowConfig(schedule=replace(TINY, steps=200), euler_steps=10)
    run = train_run(cfg, device="cpu")
    assert run.method == "flow" and set(run.state) == {"velocity"}
    assert run.frames["samples"].shape == (4, 50, 2)
    loss = run.history["loss"]
    assert sum(loss[-20:]) / 20 < sum(loss[:20]) / 20


def test_same_seed_same_numbers_on_cpu():
    cfg = ChartConfig(schedule=replace(TINY, steps=20))
    a, b = train_run(cfg, device="cpu"), train_run(cfg, device="cpu")
    assert torch.equal(a.final["samples"], b.final["samples"])
    c = train_run(replace(cfg, schedule=replace(cfg.schedule, seed=1)), device="cpu")
    assert not torch.equal(a.final["samples"], c.final["samples"])


def test_method_for_picks_the_class_of_each_config():
    for cfg, cls in ((DriftConfig(schedule=TINY), PlainDrift), (ChartConfig(schedule=TINY), Chart),
                     (FlowConfig(schedule=TINY), Flow)):
        m = method_for(cfg, "cpu")
        assert type(m) is cls and m.device == torch.device("cpu") and m.label == f"{cls.name} seed 0"
    assert method_for(ChartConfig(schedule=TINY), "cpu", label="my arm").label == "my arm"


def test_method_for_refuses_what_is_not_a_config():
    with pytest.raises(TypeError, match=r"no training method for object; known: DriftConfig, ChartConfig, FlowConfig"):
        method_for(object())
    with pytest.raises(TypeError, match="no training method for dict"):
        train_run({"steps": 10})


class NaNData(Bimodal):
    def sample(self, n, generator=None):
        out = super().sample(n, generator)
        out[0, 0] = float("nan")
        return out


def test_non_finite_loss_stops_with_a_clear_error():
    cfg = ChartConfig(data=NaNData(), schedule=TINY)
    with pytest.raises(TrainingDiverged, match=r"chart seed 0: loss became nan at step 0"):
        train_run(cfg, device="cpu")


@pytest.mark.parametrize("make, message", [
    (lambda: Schedule(steps=-1), "steps=-1 is not allowed: steps must be an integer >= 1"),
    (lambda: Schedule(steps=10, n_snapshots=50), "n_snapshots=50 is not allowed"),
    (lambda: DriftConfig(field=KernelField((0.05, -1.0))), "temperatures"),
    (lambda: DriftConfig(init_offset=(1.0, 2.0, 3.0)), "init_offset"),
    (lambda: DriftConfig(noise_dim=0), "noise_dim=0 is not allowed"),
    (lambda: ChartConfig(latent_dim=2, latent_offset=(1.0, 2.0, 3.0)), "latent_offset"),
    (lambda: ChartConfig(drift_weight=-1.0), "drift_weight=-1.0 is not allowed"),
    (lambda: FlowConfig(euler_steps=0), "euler_steps=0 is not allowed"),
    (lambda: Bimodal(spread=0), "spread must be > 0"),
])
def test_bad_configs_are_refused_with_the_parameter_named(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make()


def test_toy_chapters_use_one_thread_and_restore_the_count():
    from chartlib.compute import one_cpu_thread
    seen = []

    @one_cpu_thread
    def chapter(fail):
        seen.append(torch.get_num_threads())
        if fail:
            raise RuntimeError("boom")

    before = torch.get_num_threads()
    chapter(False)
    with pytest.raises(RuntimeError):
        chapter(True)
    assert seen == [1, 1] and torch.get_num_threads() == before


def test_use_threads_sets_and_validates_the_count():
    from chartlib.compute import use_threads
    before = torch.get_num_threads()
    try:
        assert use_threads(None) == before
        assert use_threads(1) == 1 == torch.get_num_threads()
        with pytest.raises(ValueError, match="threads=0 is not allowed"):
            use_threads(0)
    finally:
        torch.set_num_threads(before)
