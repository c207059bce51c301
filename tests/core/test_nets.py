"""Device choice: a device that is not there is refused at once, by name."""
from __future__ import annotations

import pytest
import torch

from chartlib.core.nets import pick_device


def _no_mps(monkeypatch):
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: False)


def test_missing_gpu_is_refused_at_once(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _no_mps(monkeypatch)
    for name, what in (("cuda", "CUDA"), ("mps", "MPS")):
        with pytest.raises(ValueError) as err:
            pick_device(name)
        msg = str(err.value)
        assert "device" in msg and repr(name) in msg and what in msg, msg
        assert "'auto'" in msg and "'cpu'" in msg, msg
    assert pick_device("auto") == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device"):
        pick_device("tpu")


def test_present_gpu_is_used(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("cuda") == torch.device("cuda")
    assert pick_device("auto") == torch.device("cuda")
