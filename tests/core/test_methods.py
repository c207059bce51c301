"""Smoke tests of every method on tiny problems: shapes, finiteness, learning, errors."""
from dataclasses import replace

import pytest
import torch

from chartlib.core.data import Bimodal
from chartlib.core.fields import KernelField
from chartlib.core.methods import (
    Chart,
    ChartConfig,
    DriftConfig,
    Flow,
    FlowConfig,
    PlainDrift,
    method_for,
    restore,
    train_run,
)
from chartlib.core.training import Schedule, TrainingDiverged
from chartlib.measure import metrics
from tests.helpers import NaNData

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


def test_flow_parameterisations_share_the_draw_and_relate_their_losses():
    """A clean-sample error is (1 - t) times the velocity error of the same prediction, so on the
    same network and batch the clean loss of a velocity-predicting net is at most its velocity loss;
    a clean-predicting net's velocity for sampling is (x1_hat - x) / (1 - t)."""
    cfg = FlowConfig(schedule=TINY)
    v_loss = method_for(cfg, "cpu").step(0)["loss"]
    x_loss = method_for(replace(cfg, loss="clean"), "cpu").step(0)["loss"]
    assert 0 < x_loss < v_loss
    clean = method_for(replace(cfg, prediction="clean", loss="clean"), "cpu")
    x, t = torch.randn(8, 2), torch.full((8,), 0.75)
    with torch.no_grad():
        assert torch.allclose(clean.velocity(x, t), (clean.net(x, t) - x) / 0.25)
        plain = method_for(cfg, "cpu")
        assert torch.equal(plain.velocity(x, t), plain.net(x, t))


def test_clean_prediction_flow_learns_and_logit_normal_times_lean_noisy():
    cfg = FlowConfig(schedule=replace(TINY, steps=200), euler_steps=10, prediction="clean", loss="clean",
                     logit_normal_mean=-0.5)
    run = train_run(cfg, device="cpu")
    loss = run.history["loss"]
    assert sum(loss[-20:]) / 20 < sum(loss[:20]) / 20
    assert torch.isfinite(run.frames["samples"]).all()
    t = method_for(cfg, "cpu").times(20_000)
    assert 0 < t.min() and t.max() < 1 and 0.35 < t.median() < 0.42      # sigmoid(-0.5) = 0.378
    assert abs(method_for(FlowConfig(schedule=TINY), "cpu").times(20_000).mean() - 0.5) < 0.01


def test_cosine_rate_halves_the_total_step_of_constant_gradients():
    """With a constant gradient every Adam step moves a parameter by about the rate, so over the run
    a constant rate moves it by lr * steps and half a cosine (mean 1/2) by half that."""
    from chartlib.core.training import Recorder, optimise

    def moved(lr_schedule: str) -> float:
        s = replace(TINY, steps=400, n_snapshots=2, lr=1e-2, lr_schedule=lr_schedule)
        w = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.zeros_(w.weight)

        def step(it):
            return {"loss": w.weight.sum()}

        optimise("rate", s, step, [w], Recorder(s, lambda n: {"w": w.weight.detach().clone()}))
        return -float(w.weight.detach())

    const, cos = moved("constant"), moved("cosine")
    assert const == pytest.approx(4.0, rel=1e-3)
    assert cos == pytest.approx(2.0, rel=1e-2)


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
    (lambda: FlowConfig(prediction="noise"), "prediction='noise' is not allowed"),
    (lambda: FlowConfig(loss="x"), "loss='x' is not allowed"),
    (lambda: FlowConfig(logit_normal_mean=9.0), "logit_normal_mean=9.0 is not allowed"),
    (lambda: Schedule(lr_schedule="step"), "lr_schedule='step' is not allowed"),
    (lambda: Bimodal(spread=0), "spread must be > 0"),
])
def test_bad_configs_are_refused_with_the_parameter_named(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make()


@pytest.mark.parametrize("make", [lambda: DriftConfig(schedule=replace(TINY, steps=10)),
                                  lambda: ChartConfig(schedule=replace(TINY, steps=10)),
                                  lambda: FlowConfig(schedule=replace(TINY, steps=10), euler_steps=3)],
                         ids=["drift", "chart", "flow"])
def test_restore_gives_the_method_with_the_runs_weights(make, one_thread):
    cfg = make()
    run = train_run(cfg, device="cpu")
    method = restore(cfg, run)
    assert type(method) is type(method_for(cfg, "cpu"))
    assert set(method.saved) == set(run.state)
    for name, module in method.saved.items():
        assert not module.training, name                              # eval mode
        assert all(torch.equal(v, run.state[name][k]) for k, v in module.state_dict().items()), name
    with torch.no_grad():                        # the same networks give the run's own final record
        again = method.record(cfg.schedule.n_eval)
    assert again.keys() == run.final.keys()
    for k, v in again.items():
        torch.testing.assert_close(v, run.final[k], rtol=0, atol=1e-6)
