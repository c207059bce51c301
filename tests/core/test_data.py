"""The toy data sets draw on their generator's device; on the CPU their numbers are the plain recipe's
(the MNIST digits: tests/datasets/test_digits.py)."""
from __future__ import annotations

import math

import pytest
import torch

from chartlib.core.data import Bimodal, StandardNormal, SurfaceMixture, generator_device, seeded
from chartlib.core.encoders import Gaussian
from chartlib.core.fields import dsm_loss
from chartlib.core.methods import ChartConfig, DriftConfig, FlowConfig, method_for
from chartlib.core.training import Schedule

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


DATA = {"bimodal": Bimodal(), "surface ring": SurfaceMixture(), "surface grid": SurfaceMixture(5, layout="grid"),
        "normal": StandardNormal(5)}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", DATA)
def test_samples_are_float32_on_the_generators_device(name, device):
    g = seeded(3, device)
    assert g.device.type == device and generator_device(g) == g.device
    x = DATA[name].sample(37, g)
    assert x.device.type == device and x.dtype == torch.float32 and x.shape == (37, DATA[name].dim)
    again = DATA[name].sample(37, seeded(3, device))
    assert torch.equal(x, again)                                  # the seed decides the draw on any device


def test_without_a_generator_samples_are_on_the_cpu():
    assert generator_device(None) == torch.device("cpu")
    for data in DATA.values():
        assert data.sample(4).device.type == "cpu"


def _cpu_normal(seed: int, *shape) -> torch.Tensor:
    g = torch.Generator()
    g.manual_seed(seed)
    return torch.randn(*shape, generator=g)


def test_bimodal_cpu_values_are_the_plain_recipe():
    x = Bimodal(separation=4.0, spread=0.3).sample(9, seeded(5))
    centres = torch.tensor([[-2.0, 0.0], [2.0, 0.0]] * 5)[:9]    # the modes alternate
    assert torch.equal(x, centres + 0.3 * _cpu_normal(5, 9, 2))


def test_surface_cpu_values_are_the_plain_recipe():
    data = SurfaceMixture(n_components=3, spread=0.2, radius=1.0, amplitude=0.5, frequency=2.0)
    x = data.sample(7, seeded(6))
    angles = [2 * math.pi * (i % 3) / 3 for i in range(7)]
    uv = torch.tensor([[math.cos(a), math.sin(a)] for a in angles]) + 0.2 * _cpu_normal(6, 7, 2)
    torch.testing.assert_close(x[:, :2], uv, rtol=0, atol=1e-7)
    torch.testing.assert_close(x[:, 2], 0.5 * torch.sin(2.0 * x[:, 0]), rtol=0, atol=1e-7)


def test_normal_and_fiber_noise_cpu_values_are_the_plain_recipe():
    assert torch.equal(StandardNormal(4).sample(6, seeded(7)), _cpu_normal(7, 6, 4))
    enc = Gaussian(init_log_scale=-1.0).build(3, 4, 8, 1)
    assert torch.equal(enc.draw_noise(6, seeded(8)), _cpu_normal(8, 6, 4))


def test_dsm_noise_comes_from_the_generator():
    net = torch.nn.Linear(3, 3)
    z = torch.zeros(5, 3)
    e = _cpu_normal(4, 5, 3)
    expected = (0.5 * net(z + 0.5 * e) + e).pow(2).sum(dim=1).mean()
    assert torch.equal(dsm_loss(net, z, 0.5, seeded(4)), expected)


@pytest.mark.parametrize("device", DEVICES)
def test_trainers_draw_their_batches_on_the_runs_device(device):
    tiny = Schedule(seed=2, steps=2, batch=8, width=8, depth=1, n_snapshots=2, n_show=4, n_eval=4)
    for cfg in (DriftConfig(schedule=tiny), ChartConfig(schedule=tiny, encoder=Gaussian()), FlowConfig(schedule=tiny)):
        method = method_for(cfg, device)
        assert method.gen.device.type == device
        reference = seeded(2, device)                             # the schedule's seed, on the run's device
        assert torch.equal(torch.rand(5, generator=method.gen, device=device),
                           torch.rand(5, generator=reference, device=device))
        method.step(0)["loss"].backward()                         # a step runs with its batches there
