"""The drifting field as the paper's released training code forms it, next to the book's.

The released ``drift_loss`` (github.com/lambertae/drifting, ``torch/drift_loss.py``, the
repository's PyTorch re-implementation of its original ``jax/drift_loss.py``) computes the same
mean-shift field as ``chartlib.core.drift.drift_field``: per temperature ``V = W+ * W- * (m+ - m-)``
with the kernel normalised as ``sqrt(row softmax * column softmax)``.  It differs in five places;
each is a keyword here (default: the released code), and switching them off one by one walks from
the released field to the book's:

- ``floor=1e-6``: row softmax * column softmax is clamped below at 1e-6 before the square root,
  so every normalised kernel entry is at least 1e-3.  Book: ``0``.
- ``scale_includes_self=True``: the distance scale is the mean over all mover-target pairs, the
  masked self pairs included.  Book: ``False``, the mean over the other pairs.
- ``mask="additive"``: ``mask_value`` (100) is added to each self pair's scaled distance, so the
  self pair stays in the kernel (and, under the floor, weighs 1e-3 in W-).  Book: ``"exclude"``.
- ``per_coordinate_rms=True``: each temperature's force is rescaled to unit RMS per coordinate in
  units of ``max(scale / sqrt(k), 1e-3)``; as a displacement in the data's units that is
  ``scale`` times the book's unit-RMS (per mover vector) field.  Book: ``False``.
- ``distance_eps=1e-8``: squared distances are clamped below at 1e-8 (self distances are 1e-4).
  Book: ``0``.

With all five off the field equals ``drift_field(x, positives, None, temperatures,
scale_free=True, unit_rms=True)`` (no overall factor).  What remains is the released guard that
divides distances by ``max(scale, 1e-3)`` where the book clamps at the smallest float: it acts only
when the mean pairwise distance is under 1e-3.

Everything is computed on full (n, n + p) matrices with the normalised kernel kept as a logarithm
up to the floor, so far-apart clouds give no 0/0 (the released code's plain softmax product
underflows there, which its floor hides).  Meant for batches up to a few thousand points.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from chartlib.common.checks import check_bool, check_choice, check_float, check_floats

MASKS = ("additive", "exclude")
RELEASED_DEFAULTS = dict(temperatures=(0.02, 0.05, 0.2), floor=1e-6, scale_includes_self=True, mask="additive",
                         per_coordinate_rms=True, distance_eps=1e-8, mask_value=100.0)


class _Parts(NamedTuple):
    coefficients: torch.Tensor   # (n, n + p): field_i = sum_j C_ij (targets_j - x_i)
    targets: torch.Tensor        # (n + p, k): the movers (as negatives), then the positives
    scale: torch.Tensor          # () mean pairwise distance used to make tau scale free
    input_scale: torch.Tensor    # () the released code's coordinate unit, max(scale / sqrt(k), 1e-3)


def _check_settings(temperatures, floor, mask, mask_value, distance_eps) -> None:
    check_floats("temperatures", temperatures)
    check_float("floor", floor, 0, 1, low_open=False, high_open=True)   # a bound on a product of two softmaxes
    check_choice("mask", mask, MASKS)
    check_float("mask_value", mask_value, 0)
    check_float("distance_eps", distance_eps, 0, low_open=False)


def _parts(x, positives, temperatures, floor, scale_includes_self, mask, mask_value,
           per_coordinate_rms, distance_eps) -> _Parts:
    """The field as coefficients on the targets, every temperature's normalisation folded in."""
    if x.ndim != 2 or positives.ndim != 2 or x.shape[1] != positives.shape[1]:
        raise ValueError(f"x {tuple(x.shape)} and positives {tuple(positives.shape)} must be (n, k) and (p, k)")
    if x.shape[0] < 2:
        raise ValueError("the movers are also the negatives: at least 2 movers are needed")
    _check_settings(temperatures, floor, mask, mask_value, distance_eps)
    with torch.no_grad():
        n, k = x.shape
        positives = positives.to(device=x.device, dtype=x.dtype)
        targets = torch.cat([x, positives])                               # (n + p, k)
        dist = torch.cdist(x, targets).pow(2).clamp_min(distance_eps).sqrt()
        own = torch.arange(n, device=x.device)
        self_pair = torch.zeros_like(dist, dtype=torch.bool)
        self_pair[own, own] = True
        if scale_includes_self:
            scale = dist.mean()
        else:
            scale = dist.masked_fill(self_pair, 0).sum() / (dist.numel() - n)
        input_scale = (scale / math.sqrt(k)).clamp_min(1e-3)
        scaled = dist / scale.clamp_min(1e-3)
        if mask == "additive":
            scaled = scaled + mask_value * self_pair

        log_floor = 0.5 * math.log(floor) if floor > 0 else -math.inf
        total = torch.zeros_like(dist)
        for tau in temperatures:
            logits = -scaled / tau
            if mask == "exclude":
                logits = logits.masked_fill(self_pair, -math.inf)
            # log sqrt(row softmax * column softmax), raised to the floor: log A >= log(floor) / 2
            log_a = 0.5 * (torch.log_softmax(logits, dim=1) + torch.log_softmax(logits, dim=0))
            log_a = log_a.clamp_min(log_floor)
            if mask == "exclude":
                log_a = log_a.masked_fill(self_pair, -math.inf)           # no pair, floor or not
            log_w_neg = torch.logsumexp(log_a[:, :n], dim=1, keepdim=True)   # log W-  (n, 1)
            log_w_pos = torch.logsumexp(log_a[:, n:], dim=1, keepdim=True)   # log W+  (n, 1)
            # V = W- * sum_pos A (y - x) - W+ * sum_neg A (x_j - x): coefficients on the targets
            log_c = torch.cat([log_a[:, :n] + log_w_pos, log_a[:, n:] + log_w_neg], dim=1)
            shift = log_c.max()                                           # the normalisation removes it
            c = torch.exp(log_c - shift)
            c = torch.cat([-c[:, :n], c[:, n:]], dim=1)
            field = c @ targets - c.sum(dim=1, keepdim=True) * x          # (n, k), times exp(-shift)
            if per_coordinate_rms:
                # released: force in units of input_scale, mean square over all n * k entries
                # clamped at 1e-8; the displacement in data units is input_scale * force
                log_rms = 0.5 * torch.log((field / input_scale).pow(2).mean()) + shift
                log_rms = log_rms.clamp_min(0.5 * math.log(1e-8))
                total = total + c * torch.exp(shift - log_rms)
            else:
                rms = field.pow(2).sum(dim=1).mean().sqrt()
                total = total + c / rms.clamp_min(torch.finfo(x.dtype).tiny)
        return _Parts(total, targets, scale, input_scale)


def released_drift_field(
    x: torch.Tensor,
    positives: torch.Tensor,
    temperatures: Sequence[float] = (0.02, 0.05, 0.2),
    floor: float = 1e-6,
    scale_includes_self: bool = True,
    mask: str = "additive",
    per_coordinate_rms: bool = True,
    distance_eps: float = 1e-8,
    mask_value: float = 100.0,
) -> torch.Tensor:
    """The released code's field at the movers, as a displacement in the data's units.

    Args:
        x: movers (n, k), n >= 2; they are also the negatives, their self pairs masked.
        positives: samples of the target (p, k).
        temperatures: the kernel temperatures, relative to the distance scale; forces summed.
        floor: lower bound on row softmax * column softmax (kernel entries >= sqrt(floor)).
        scale_includes_self: the distance scale averages the self pairs too (True) or not.
        mask: ``"additive"`` adds ``mask_value`` to each self pair's scaled distance;
            ``"exclude"`` drops the self pairs from the kernel entirely.
        per_coordinate_rms: normalise each temperature's force per coordinate in units of
            ``scale / sqrt(k)`` (True), or per mover vector in the data's units (False, the book).
        distance_eps: squared distances are clamped below at this value.
        mask_value: the constant of the additive mask.

    Returns:
        (n, k): the released loss moves ``x`` towards ``x + field``.  Computed without gradients.
    """
    parts = _parts(x, positives, tuple(temperatures), floor, scale_includes_self, mask, mask_value,
                   per_coordinate_rms, distance_eps)
    c = parts.coefficients
    return c @ parts.targets - c.sum(dim=1, keepdim=True) * x.detach()


def released_loss(u: torch.Tensor, positives: torch.Tensor, **field_kwargs) -> torch.Tensor:
    """The released loss ``mean((u / s - sg(u / s + field / s))^2)`` with ``s = max(scale/sqrt(k), 1e-3)``.

    The mean runs over all n * k entries.  Its value is ``mean((field / s)^2)``, which with the
    default per-coordinate normalisation is ``|temperatures| + 2 * sum_{a<b} mean(f_a * f_b)`` for
    the unit-RMS forces ``f_t``: exactly 1 for one temperature wherever the movers are (unless a
    force's mean square falls under 1e-8), and between 0 and ``|temperatures|**2`` for several,
    measuring only how well the temperatures' forces agree, never how far the movers are from the
    target.  Its gradient is ``-2 field / (n k s^2)``.

    Args:
        u: movers (n, k), with gradients.  positives: (p, k).  field_kwargs: as released_drift_field.

    Returns:
        A scalar.
    """
    kw = {**RELEASED_DEFAULTS, **field_kwargs}
    parts = _parts(u.detach(), positives, tuple(kw.pop("temperatures")), **kw)
    field = parts.coefficients @ parts.targets - parts.coefficients.sum(dim=1, keepdim=True) * u.detach()
    s = parts.input_scale
    return (u / s - (u.detach() / s + field / s)).pow(2).mean()


@dataclass(frozen=True)
class ReleasedKernelField:
    """The released code's kernel field as a field object (stateless; defaults = the released code)."""

    temperatures: tuple[float, ...] = (0.02, 0.05, 0.2)
    floor: float = 1e-6
    scale_includes_self: bool = True
    mask: str = "additive"
    per_coordinate_rms: bool = True
    distance_eps: float = 1e-8
    mask_value: float = 100.0

    def __post_init__(self):
        temperatures = check_floats("temperatures", self.temperatures)
        object.__setattr__(self, "temperatures", tuple(float(t) for t in temperatures))
        check_bool("scale_includes_self", self.scale_includes_self)
        check_bool("per_coordinate_rms", self.per_coordinate_rms)
        _check_settings(self.temperatures, self.floor, self.mask, self.mask_value, self.distance_eps)

    def build(self, dim: int, device) -> "ReleasedKernelField":
        return self

    def velocity(self, movers: torch.Tensor, target, generator: torch.Generator | None) -> torch.Tensor:
        """Movers (n, k) -> field (n, k), no gradients; positives: n fresh samples of ``target``."""
        positives = target.sample(movers.shape[0], generator).to(movers.device)
        return released_drift_field(movers, positives, self.temperatures, self.floor,
                                     self.scale_includes_self, self.mask, self.per_coordinate_rms,
                                     self.distance_eps, self.mask_value)

    def modules(self) -> dict:
        return {}

    def stats(self) -> dict:
        return {}
