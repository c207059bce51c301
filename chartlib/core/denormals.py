"""Subnormal floats as zero on the CPU while the drifting field is computed."""
from __future__ import annotations

from contextlib import contextmanager

import torch


class FlushDenormals:
    """Treat subnormal floats as zero on this CPU thread inside ``with`` (restored afterwards).

    Products far below the smallest normal float are dropped either way (their error is covered by
    the exact recomputation of rows with small sums), but subnormal arithmetic can run many times
    slower on the CPU.  ``paused()`` restores ordinary arithmetic while the caller weighs a temperature.
    """

    def __init__(self, device: torch.device):
        self.cpu, self.switched = device.type == "cpu", False

    def __enter__(self):
        probe = torch.tensor(2.0 ** -70, dtype=torch.float32)
        if self.cpu and bool(probe * probe != 0):                          # not flushing already
            self.switched = torch.set_flush_denormal(True)
        return self

    def __exit__(self, *exc):
        if self.switched:
            torch.set_flush_denormal(False)
        self.switched = False

    @contextmanager
    def paused(self):
        switched = self.switched
        if switched:
            torch.set_flush_denormal(False)
        try:
            yield
        finally:
            if switched and self.switched:
                torch.set_flush_denormal(True)
