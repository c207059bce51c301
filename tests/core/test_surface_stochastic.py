"""The surface data set and the stochastic chart (fast: a few seconds); the space-filling metrics are in
tests/measure/test_metrics.py, the chapter's sentences in tests/report/test_space_filling.py."""
import math

import pytest
import torch

from chartlib.core.data import StandardNormal, SurfaceMixture, seeded
from chartlib.core.encoders import Deterministic, Gaussian
from chartlib.core.fields import CriticField, KernelField, dsm_loss
from chartlib.core.methods import ChartConfig, method_for, train_run
from chartlib.core.training import Schedule
from chartlib.runs.cache import run_key

SURFACE = SurfaceMixture()


pytestmark = pytest.mark.usefixtures("one_thread")


def _unit_normals(surface: SurfaceMixture, u: torch.Tensor) -> torch.Tensor:
    """Unit normals of z = a sin(f u) at u (n,): (n, 3)."""
    slope = surface.amplitude * surface.frequency * torch.cos(surface.frequency * u)
    n = torch.stack([-slope, torch.zeros_like(u), torch.ones_like(u)], dim=1)
    return n / n.norm(dim=1, keepdim=True)


# ---------------------------------------------------------------------------------------------
# data

def test_surface_sample_shape_balance_and_scale():
    x = SURFACE.sample(600, seeded(0))
    assert x.shape == (600, 3) and SURFACE.dim == 3 and SURFACE.centres.shape == (6, 3)
    nearest = torch.cdist(x, SURFACE.centres).argmin(dim=1)
    # components take turns (balanced) and are well separated: almost every point is nearest its own
    assert (nearest == torch.arange(600) % 6).float().mean() > 0.98
    assert (x.std(dim=0) > 0.3).all() and (x.std(dim=0) < 1.5).all()    # prior-like scale
    grid = SurfaceMixture(n_components=9, layout="grid")
    assert grid.centres.shape == (9, 3) and grid.sample(10).shape == (10, 3)


def test_distance_zero_on_surface_and_exact_along_normal():
    x = SURFACE.sample(500, seeded(1)).double()
    assert SURFACE.distance_to_surface(x).max() < 1e-5
    normals = _unit_normals(SURFACE, x[:, 0])
    # within the local radius of curvature (>= 1 / (a f^2) = 0.74) the foot point stays put
    for eps in (0.01, 0.1, 0.3):
        for sign in (1, -1):
            d = SURFACE.distance_to_surface(x + sign * eps * normals)
            assert torch.allclose(d, torch.full_like(d, eps), atol=1e-5), (eps, sign)


def test_distance_matches_brute_force_far_from_surface():
    p = torch.tensor([[0.3, 1.0, 3.0], [-2.0, 0.0, -2.5], [5.0, -1.0, 0.1]], dtype=torch.float64)
    u = torch.linspace(-20, 20, 400_001, dtype=torch.float64)
    brute = torch.stack([((q[0] - u) ** 2 + (q[2] - SURFACE.height(u)) ** 2).min().sqrt() for q in p])
    assert torch.allclose(SURFACE.distance_to_surface(p).double(), brute, atol=1e-5)


def test_surface_validation():
    for kw, name in [({"n_components": 0}, "n_components"), ({"spread": 0.0}, "spread"),
                     ({"layout": "spiral"}, "layout"), ({"frequency": -1.0}, "frequency")]:
        with pytest.raises(ValueError, match=name):
            SurfaceMixture(**kw)


# ---------------------------------------------------------------------------------------------
# stochastic chart: ChartConfig with a Gaussian encoder and a kernel or critic field

FIELDS = {"kernel": KernelField(), "critic": CriticField(width=16)}


def _small(init_log_scale: float = -1.0, field: str = "kernel", **kw) -> ChartConfig:
    sched = Schedule(steps=30, batch=64, width=32, depth=2, n_snapshots=3, n_show=50, n_eval=100)
    return ChartConfig(data=SURFACE, schedule=sched, encoder=Gaussian(init_log_scale), field=FIELDS[field],
                       **{"latent_dim": 3, **kw})


def test_stochastic_encoder_shapes_and_reparameterised_gradient():
    m = method_for(_small(init_log_scale=-1.0, field="critic"), "cpu")
    enc, dec, critic = m.enc, m.dec, m.field.net
    x = SURFACE.sample(8)
    z, parts = enc(x, enc.draw_noise(8, seeded(0)))
    mu, sigma = parts["mu"], parts["sigma"]
    assert z.shape == mu.shape == sigma.shape == (8, 3)
    assert abs(sigma.log().mean().item() + 1.0) < 0.5                 # starts near init_log_scale
    (dec(z) - x).pow(2).sum().backward()
    # the log-scale is the encoder's last d outputs: their weights must receive a gradient
    last = enc.net[-1]
    assert last.weight.grad[3:].abs().sum() > 0 and last.bias.grad[3:].abs().sum() > 0
    assert critic(z).shape == (8, 3)


def test_critic_learns_a_known_score():
    # samples of N(m, s0^2 I); smoothed at noise s the score is -(z - m) / (s0^2 + s^2)
    torch.manual_seed(0)
    m, s0, s = torch.tensor([1.0, -0.5, 0.0]), 0.7, 0.5
    critic = CriticField(noise=s, width=64).build(3, "cpu").net
    opt = torch.optim.Adam(critic.parameters(), lr=3e-3)
    fixed = m + s0 * torch.randn(2000, 3)

    def held_out_loss():
        with torch.no_grad():
            return dsm_loss(critic, fixed, s, seeded(1)).item()

    before = held_out_loss()
    for _ in range(300):
        loss = dsm_loss(critic, m + s0 * torch.randn(256, 3), s)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = held_out_loss()
    # the least possible loss is d (1 - s^2 / (s0^2 + s^2)) = 1.99; an untrained net gives about d = 3
    best = 3 * (1 - s ** 2 / (s0 ** 2 + s ** 2))
    assert after < before - 0.5 and after < best + 0.2
    z = m + s0 * torch.randn(500, 3)
    true = -(z - m) / (s0 ** 2 + s ** 2)
    with torch.no_grad():
        err = (critic(z) - true).pow(2).sum(dim=1).mean().sqrt() / true.pow(2).sum(dim=1).mean().sqrt()
    assert err < 0.2


def test_the_critic_field_learns_its_movers_score():
    """Through the field's own loop: movers from N(m, s0^2 I), many velocity calls; the field then
    approaches -z / (1 + s^2) + (z - m) / (s0^2 + s^2) (the prior's smoothed score minus theirs)."""
    torch.manual_seed(0)
    m, s0, s = torch.tensor([1.0, -0.5, 0.0]), 0.7, 0.5
    field = CriticField(noise=s, steps=10, width=64, lr=3e-3).build(3, "cpu")
    g = seeded(0)
    for _ in range(40):
        field.velocity(m + s0 * torch.randn(256, 3, generator=g), StandardNormal(3), g)
    z = m + s0 * torch.randn(500, 3, generator=g)
    v = field.velocity(z, StandardNormal(3), g)
    true = -z / (1 + s ** 2) + (z - m) / (s0 ** 2 + s ** 2)
    err = (v - true).pow(2).sum(dim=1).mean().sqrt() / true.pow(2).sum(dim=1).mean().sqrt()
    assert err < 0.5          # an untrained critic is off by 1.5; the DSM estimate's noise limits it to about 0.3


@pytest.mark.parametrize("make, name", [
    (lambda: _small(field="kernel", latent_dim=0), "latent_dim"),
    (lambda: CriticField(noise=0.0), "critic_noise"),
    (lambda: CriticField(steps=0), "critic_steps"),
    (lambda: CriticField(lr=-1.0), "critic_lr"),
    (lambda: CriticField(width=0), "critic_width"),
    (lambda: Gaussian(init_log_scale=9.0), "init_log_scale"),
    (lambda: ChartConfig(data=SURFACE, latent_dim=3, field="flow"), "field"),
    (lambda: ChartConfig(data=SURFACE, latent_dim=3, encoder="vae"), "encoder"),
])
def test_stochastic_config_validation(make, name):
    with pytest.raises(ValueError, match=f"{name}=.* is not allowed"):
        make()


@pytest.mark.parametrize("field", ["kernel", "critic"])
def test_short_stochastic_run_is_finite(field):
    cfg = _small(field=field)
    run = train_run(cfg, device="cpu")
    for name in ("loss", "recon", "drift", "sigma"):
        assert len(run.history[name]) == 30 and all(math.isfinite(v) for v in run.history[name])
    assert ("critic" in run.history) == (field == "critic")
    assert ("critic" in run.state) == (field == "critic")
    assert run.frames["latents"].shape == (3, 50, 3) and run.frames["sigma"].shape == (3, 50, 3)
    assert run.frames["mu"].shape == (3, 50, 3)
    assert run.final["samples"].shape == (100, 3) and (run.final["sigma"] > 0).all()
    assert run_key(cfg).startswith("chart-")


def test_stochastic_and_deterministic_charts_have_their_own_keys():
    det = ChartConfig(data=SURFACE, schedule=_small().schedule, latent_dim=3)
    keys = {run_key(det), run_key(_small(field="kernel")), run_key(_small(field="critic")),
            run_key(_small(field="kernel", init_log_scale=-2.0))}
    assert len(keys) == 4


def test_deterministic_chart_runs_on_the_surface():
    sched = Schedule(steps=10, batch=32, width=16, depth=1, n_snapshots=2, n_show=20, n_eval=40)
    cfg = ChartConfig(data=SURFACE, schedule=sched, latent_dim=3, encoder=Deterministic())
    run = train_run(cfg, device="cpu")
    assert run.final["samples"].shape == (40, 3) and run_key(cfg).startswith("chart-")
    assert "sigma" not in run.final and "sigma" not in run.history
    assert run_key(cfg) != run_key(ChartConfig(schedule=sched, latent_dim=3))   # Bimodal keys differ
