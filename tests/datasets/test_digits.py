"""The MNIST digits as a data set for the trainers (``chartlib.datasets.mnist.MnistDigits``): a fake
split stands in for the files, so these need no MNIST on disk (except the one marked test)."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from chartlib.core.data import generator_device, seeded
from chartlib.core.encoders import Gaussian
from chartlib.core.methods import ChartConfig, FlowConfig
from chartlib.datasets import mnist
from chartlib.datasets.mnist_files import default_root
from chartlib.runs.cache import run_key

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture
def fake_digits(monkeypatch):
    """Both splits replaced by small known tensors: train row i is filled with i / 100."""
    train = (torch.arange(100).float() / 100)[:, None].expand(100, 784).contiguous()
    test = torch.full((10, 784), 0.5)
    root = str(default_root())
    monkeypatch.setattr(mnist, "_SPLITS", {(True, root): train, (False, root): test})
    monkeypatch.setattr(mnist, "_COPIES", {})
    return train, test


@pytest.mark.parametrize("device", DEVICES)
def test_digits_are_float32_on_the_generators_device(device, fake_digits):
    g = seeded(3, device)
    assert g.device.type == device and generator_device(g) == g.device
    x = mnist.MnistDigits().sample(37, g)
    assert x.device.type == device and x.dtype == torch.float32 and x.shape == (37, 784)
    assert torch.equal(x, mnist.MnistDigits().sample(37, seeded(3, device)))   # the seed decides the draw
    assert mnist.MnistDigits().sample(4).device.type == "cpu"                   # no generator: the CPU


def test_digits_cpu_values_index_the_split_with_the_generator(fake_digits):
    train, _ = fake_digits
    g = torch.Generator()
    g.manual_seed(9)
    rows = torch.randint(0, 100, (12,), generator=g)
    assert torch.equal(mnist.MnistDigits().sample(12, seeded(9)), train[rows])


def test_mnist_digits_samples_training_rows(fake_digits):
    train, _ = fake_digits
    data = mnist.MnistDigits()
    assert data.dim == 784
    x = data.sample(64, torch.Generator().manual_seed(0))
    assert x.shape == (64, 784) and x.dtype == torch.float32
    assert (x >= 0).all() and (x <= 1).all()
    rows = (x[:, 0] * 100).round().long()
    assert torch.equal(x, train[rows])                       # whole training digits, nothing mixed
    again = data.sample(64, torch.Generator().manual_seed(0))
    assert torch.equal(x, again)                             # the generator decides the draw
    x[:] = 7                                                 # the caller's copy, not the shared split
    assert train.max() < 1


def test_mnist_digits_test_split_and_validation(fake_digits):
    assert torch.equal(mnist.MnistDigits(train=False).sample(3), torch.full((3, 784), 0.5))
    with pytest.raises(ValueError, match="train"):
        mnist.MnistDigits(train="yes")
    with pytest.raises(dataclasses.FrozenInstanceError):
        mnist.MnistDigits().train = False


def test_mnist_digits_works_as_a_config_field_without_paths():
    for cfg in (ChartConfig(data=mnist.MnistDigits(), latent_dim=12),
                ChartConfig(data=mnist.MnistDigits(), latent_dim=12, encoder=Gaussian()),
                FlowConfig(data=mnist.MnistDigits())):
        fields = dataclasses.asdict(cfg)
        assert fields["data"] == {"train": True}
        assert "/" not in json.dumps(fields, default=str)
        assert run_key(cfg) == run_key(dataclasses.replace(cfg))
    assert run_key(FlowConfig(data=mnist.MnistDigits())) != run_key(FlowConfig(data=mnist.MnistDigits(train=False)))


@pytest.mark.real_data
def test_mnist_digits_on_the_real_files():
    x = mnist.MnistDigits().sample(500, torch.Generator().manual_seed(1))
    assert x.shape == (500, 784) and 0 <= x.min() and x.max() <= 1
    assert 0.08 < x.mean() < 0.18                            # MNIST's mean pixel is about 0.13
    assert mnist.digit_images(True) is mnist.digit_images(True)   # loaded once per process
