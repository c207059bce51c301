"""MNIST as tensors and as a data set for the trainers.

The digits are read by ``torchvision.datasets.MNIST`` from ``<root>/MNIST/raw`` (root:
``$CHARTLIB_MNIST_DIR``, else ``.cache/mnist`` at the repository root), fetched once when missing
(:mod:`chartlib.datasets.mnist_fetch`) and checked against the original files
(:mod:`chartlib.datasets.mnist_files`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from chartlib.core.data import generator_device

from .mnist_fetch import ensure_mnist
from .mnist_files import default_root


def load_mnist(root=None, train: bool = True) -> torch.utils.data.Dataset:
    """torchvision's MNIST dataset (60,000 train or 10,000 test digits), fetching it once if missing."""
    from torchvision.datasets import MNIST

    root = Path(root if root is not None else default_root())
    ensure_mnist(root)
    return MNIST(str(root), train=train, download=False)


def mnist_tensors(train: bool, root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """All digits of a split as tensors: images float32 (n, 784) = uint8/255 in [0, 1], labels int64 (n,)."""
    ds = load_mnist(root, train=train)
    images = ds.data.reshape(len(ds), 784).float().div_(255.0)
    return images, ds.targets.long()


# ---------------------------------------------------------------- a data set for the trainers

_SPLITS: dict[tuple[bool, str], torch.Tensor] = {}   # (train, root) -> images (n, 784), loaded once
_COPIES: dict[tuple[bool, str, str], torch.Tensor] = {}   # (train, root, device) -> a split on another device


def digit_images(train: bool = True, device: torch.device | str = "cpu") -> torch.Tensor:
    """Every image of a split as float32 (n, 784) in [0, 1], read once per process and kept (one
    copy per device asked for).

    The folder is :func:`default_root` (``$CHARTLIB_MNIST_DIR`` or ``.cache/mnist``), looked up at
    call time so that no machine-specific path ends up in a config.
    """
    key = (bool(train), str(default_root()))
    if key not in _SPLITS:
        images, _ = mnist_tensors(bool(train))
        _SPLITS[key] = images.contiguous()
    device = torch.device(device)
    if device.type == "cpu":
        return _SPLITS[key]
    if (*key, str(device)) not in _COPIES:
        _COPIES[(*key, str(device))] = _SPLITS[key].to(device)
    return _COPIES[(*key, str(device))]


@dataclass(frozen=True)
class MnistDigits:
    """MNIST as a data set for the trainers (the ``data`` field of a chart or flow config).

    ``sample(n, generator)`` draws n digits uniformly with replacement from the 60,000 training
    images (``train=False``: the 10,000 test images), flattened to (n, 784) with values in [0, 1].
    The only field is the split, so the run cache keys a config by what it means, not by where the
    files happen to live on this machine.
    """

    train: bool = True

    def __post_init__(self):
        if not isinstance(self.train, bool):
            raise ValueError(f"train={self.train!r} is not allowed: train must be True or False")

    @property
    def dim(self) -> int:
        return 784

    def images(self) -> torch.Tensor:
        """All images of the split, (n, 784) float32 in [0, 1] (shared, do not modify)."""
        return digit_images(self.train)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n random digits, shape (n, 784), float32 in [0, 1], on the generator's device (indexed
        there, from that device's copy of the images); a copy the caller may modify."""
        device = generator_device(generator)
        images = digit_images(self.train, device)
        idx = torch.randint(0, images.shape[0], (n,), generator=generator, device=device)
        return images[idx]
