"""Fields: what gives the movers their velocity.

A field is a frozen dataclass (its settings, part of a run's cache key) with four methods:

* ``build(dim, device)`` returns the object that acts: the field itself when it has no state, or a
  new object that owns networks and optimisers (the score critic);
* ``velocity(movers, target, generator)`` gives the velocity of every mover, shape (n, k), computed
  without gradients; ``target`` is what the movers should become (an object with
  ``sample(n, generator) -> (n, k)``: the data for plain drifting, the prior for a chart), and
  ``generator`` is the run's random stream (a field that samples must draw from it, in a fixed order);
* ``modules()`` the networks to save with the run (none for a kernel field);
* ``stats()`` scalars (0-d tensors) to log for the step just taken.

A new field is one file in this folder, one export line in this package's ``__init__`` and its
tests; ``chartlib.core.methods`` takes any of them, and the run cache's code version covers it.
"""
from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class Field(Protocol):
    """What a field's settings object provides (see the module docstring)."""

    def build(self, dim: int, device) -> "ActingField": ...


class ActingField(Protocol):
    """What ``Field.build`` returns: the object a trainer calls once per step."""

    def velocity(self, movers: torch.Tensor, target, generator: torch.Generator) -> torch.Tensor: ...

    def modules(self) -> dict[str, nn.Module]: ...

    def stats(self) -> dict[str, torch.Tensor]: ...
