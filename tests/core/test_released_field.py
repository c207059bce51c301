"""The released code's field (chartlib.core.fields.released) against a plain float64 transcription of
its formula, switch by switch, and against the book's field once every difference is off."""
import dataclasses
import math

import pytest
import torch

from chartlib.core.data import Bimodal
from chartlib.core.drift import drift_field
from chartlib.core.fields import KernelField, ReleasedKernelField
from chartlib.core.fields.released import released_drift_field, released_loss

RELEASED = dict(floor=1e-6, scale_includes_self=True, mask="additive", per_coordinate_rms=True, distance_eps=1e-8)
BOOK = dict(floor=0.0, scale_includes_self=False, mask="exclude", per_coordinate_rms=False, distance_eps=0.0)
SWITCH_OFF = dict(floor=0.0, scale_includes_self=False, mask="exclude", per_coordinate_rms=False, distance_eps=0.0)


def plain_field(x, pos, temperatures, floor, scale_includes_self, mask, per_coordinate_rms, distance_eps,
                mask_value=100.0, with_kernels=False):
    """The formula written out with full float64 matrices: softmaxes, their product, the floor."""
    x, pos = x.double(), pos.double()
    n, k = x.shape
    targets = torch.cat([x, pos])
    sq = ((x[:, None, :] - targets[None, :, :]) ** 2).sum(-1)
    dist = torch.sqrt(torch.clamp(sq, min=distance_eps))
    eye = torch.zeros_like(dist)
    eye[:, :n] = torch.eye(n, dtype=dist.dtype)
    if scale_includes_self:
        scale = dist.mean()
    else:
        scale = (dist * (1 - eye)).sum() / (n * targets.shape[0] - n)
    unit = max(scale.item() / math.sqrt(k), 1e-3)                     # the released coordinate unit
    scaled_d = dist / max(scale.item(), 1e-3)
    if mask == "additive":
        scaled_d = scaled_d + mask_value * eye
    total, kernels = torch.zeros_like(x), []
    for tau in temperatures:
        kern = torch.exp(-scaled_d / tau)
        if mask == "exclude":
            kern = kern * (1 - eye)
        row = kern / kern.sum(1, keepdim=True)
        col = kern / kern.sum(0, keepdim=True)
        a = torch.sqrt(torch.clamp(row * col, min=floor))
        if mask == "exclude":
            a = a * (1 - eye)
        kernels.append(a)
        a_neg, a_pos = a[:, :n], a[:, n:]
        coef = torch.cat([-a_neg * a_pos.sum(1, keepdim=True), a_pos * a_neg.sum(1, keepdim=True)], 1)
        force = coef @ targets - coef.sum(1, keepdim=True) * x        # data units
        if per_coordinate_rms:
            force_scaled = force / unit
            force_scaled = force_scaled / torch.sqrt(torch.clamp((force_scaled ** 2).mean(), min=1e-8))
            total = total + unit * force_scaled
        else:
            total = total + force / torch.sqrt((force ** 2).sum(1).mean())
    return (total, kernels, scale) if with_kernels else total


def clouds(seed, n=40, p=50, k=3, offset=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, k, generator=g, dtype=dtype)
    pos = torch.randn(p, k, generator=g, dtype=dtype)
    pos[:, 0] += offset
    return x, pos


def test_released_defaults_match_the_plain_formula():
    x, pos = clouds(0)
    temps = (0.02, 0.05, 0.2)
    v = released_drift_field(x, pos)
    torch.testing.assert_close(v, plain_field(x, pos, temps, **RELEASED), rtol=1e-9, atol=1e-11)
    assert v.abs().max() > 0.1


def test_clouds_six_units_apart_at_tau_005_where_the_floor_dominates():
    x, pos = clouds(1, n=32, p=48, k=2, offset=0.0)
    pos = 0.3 * pos + torch.tensor([6.0, 0.0], dtype=torch.float64)
    x = 0.3 * x
    v = released_drift_field(x, pos, temperatures=(0.05,))
    want, kernels, scale = plain_field(x, pos, (0.05,), **RELEASED, with_kernels=True)
    torch.testing.assert_close(v, want, rtol=1e-9, atol=1e-11)
    # every mover-to-positive entry sits on the floor: sqrt(1e-6) = 1e-3
    torch.testing.assert_close(kernels[0][:, 32:], torch.full((32, 48), 1e-3, dtype=torch.float64))
    # the unfloored entries are hundreds of times below it: the floor decides them all
    _, unfloored, _ = plain_field(x, pos, (0.05,), **{**RELEASED, "floor": 0.0}, with_kernels=True)
    assert unfloored[0][:, 32:].max() < 1e-3 / 400
    # so the field is the floor's: it points at the positives at every mover
    assert (v[:, 0] > 0).all()
    # same without the floor, in float64 nothing underflows yet at 6 units
    torch.testing.assert_close(released_drift_field(x, pos, (0.05,), floor=0.0),
                               plain_field(x, pos, (0.05,), **{**RELEASED, "floor": 0.0}), rtol=1e-7, atol=1e-9)


def test_the_floor_keeps_clouds_100_units_apart_finite_in_float32():
    x, pos = clouds(2, n=32, p=32, k=2, offset=0.0, dtype=torch.float32)
    pos = pos + torch.tensor([100.0, 0.0])
    v = released_drift_field(x, pos)
    assert torch.isfinite(v).all() and (v[:, 0] > 0).all()
    torch.testing.assert_close(v.double(), plain_field(x, pos, (0.02, 0.05, 0.2), **RELEASED), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("switch", sorted(SWITCH_OFF))
def test_each_difference_switched_off_alone_matches_the_plain_formula(switch):
    x, pos = clouds(3)
    x[5] = pos[7]                                   # a coincident pair, so distance_eps matters
    settings = {**RELEASED, switch: SWITCH_OFF[switch]}
    temps = (0.02, 0.05, 0.2)
    v = released_drift_field(x, pos, temps, **settings)
    torch.testing.assert_close(v, plain_field(x, pos, temps, **settings), rtol=1e-8, atol=1e-10)
    released = released_drift_field(x, pos, temps)
    assert (v - released).norm() > 1e-9 * released.norm()          # the switch changes the field


def test_all_differences_off_is_the_books_field():
    x, pos = clouds(4)
    temps = (0.02, 0.05, 0.2)
    book = drift_field(x, pos, None, temps, scale_free=True, unit_rms=True)
    torch.testing.assert_close(released_drift_field(x, pos, temps, **BOOK), book, rtol=1e-9, atol=1e-11)


def test_per_coordinate_rms_is_the_books_field_times_the_distance_scale():
    x, pos = clouds(5)
    temps = (0.02, 0.05, 0.2)
    book = drift_field(x, pos, None, temps, scale_free=True, unit_rms=True)
    _, _, scale = plain_field(x, pos, temps, **BOOK, with_kernels=True)   # mean distance, self pairs out
    v = released_drift_field(x, pos, temps, **{**BOOK, "per_coordinate_rms": True})
    torch.testing.assert_close(v, scale * book, rtol=1e-9, atol=1e-11)


def test_shift_invariant_and_scale_equivariant():
    x, pos = clouds(6)
    c = torch.tensor([3.0, -2.0, 5.0], dtype=torch.float64)
    v = released_drift_field(x, pos)
    torch.testing.assert_close(released_drift_field(x + c, pos + c), v, rtol=1e-7, atol=1e-9)
    # equivariant to a common scale except for the absolute constant distance_eps (self distances
    # of sqrt(1e-8) enter the mean), which moves the field by ~1e-5 of itself here
    torch.testing.assert_close(released_drift_field(2.5 * x, 2.5 * pos), 2.5 * v, rtol=1e-4, atol=1e-4)
    v0 = released_drift_field(x, pos, distance_eps=0.0)
    torch.testing.assert_close(released_drift_field(2.5 * x, 2.5 * pos, distance_eps=0.0), 2.5 * v0,
                               rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("where", ["near", "far", "on the target"])
def test_released_loss_is_one_for_one_temperature_wherever_the_movers_are(where):
    x, pos = clouds(7, offset={"near": 1.0, "far": 8.0, "on the target": 0.0}[where])
    loss = released_loss(x.clone().requires_grad_(), pos, temperatures=(0.05,))
    assert math.isclose(loss.item(), 1.0, rel_tol=1e-12)


def test_released_loss_with_three_temperatures_only_measures_their_agreement():
    x, pos = clouds(8)
    temps = (0.02, 0.05, 0.2)
    n, k = x.shape
    scale = plain_field(x, pos, temps, **RELEASED, with_kernels=True)[2]
    unit = scale / math.sqrt(k)
    u = x.clone().requires_grad_()
    loss = released_loss(u, pos, temperatures=temps)
    forces = [released_drift_field(x, pos, (t,)) / unit for t in temps]       # unit RMS per coordinate
    cross = sum((forces[a] * forces[b]).mean() for a in range(3) for b in range(a + 1, 3))
    assert math.isclose(loss.item(), 3 + 2 * cross.item(), rel_tol=1e-10)
    assert 0 <= loss.item() <= 9
    loss.backward()
    field = released_drift_field(x, pos, temps)
    torch.testing.assert_close(u.grad, -2 * field / (n * k * unit ** 2), rtol=1e-9, atol=1e-12)


def test_field_object_interface():
    field = ReleasedKernelField()
    assert field.build(2, "cpu") is field and field.modules() == {} and field.stats() == {}
    movers = torch.randn(64, 2, requires_grad=True)
    v1 = field.velocity(movers, Bimodal(), torch.Generator().manual_seed(0))
    v2 = field.velocity(movers, Bimodal(), torch.Generator().manual_seed(0))
    assert v1.shape == (64, 2) and not v1.requires_grad
    torch.testing.assert_close(v1, v2)
    pos = Bimodal().sample(64, torch.Generator().manual_seed(0))
    torch.testing.assert_close(v1, released_drift_field(movers.detach(), pos))
    assert ReleasedKernelField(temperatures=[0.1, 0.3]).temperatures == (0.1, 0.3)
    # one number is one temperature, as for the book's KernelField
    assert ReleasedKernelField(temperatures=0.05).temperatures == (0.05,) == KernelField(0.05).temperatures
    with pytest.raises(dataclasses.FrozenInstanceError):
        field.floor = 0.0                                            # frozen


@pytest.mark.parametrize("bad, name", [
    (dict(temperatures=()), "temperatures"),
    (dict(temperatures=(0.05, -0.1)), "temperatures"),
    (dict(temperatures=(float("nan"),)), "temperatures"),
    (dict(temperatures="0.05"), "temperatures"),
    (dict(floor=-1e-6), "floor"),
    (dict(floor=1.0), "floor"),
    (dict(mask="multiply"), "mask"),
    (dict(mask_value=0.0), "mask_value"),
    (dict(distance_eps=-1.0), "distance_eps"),
    (dict(scale_includes_self=1), "scale_includes_self"),
    (dict(per_coordinate_rms="yes"), "per_coordinate_rms"),
])
def test_invalid_parameters_raise(bad, name):
    # the messages come from chartlib.common.checks: "name=value is not allowed: name must be ..."
    message = rf"{name}(\[\d+\])?=.* is not allowed: {name}(\[\d+\])? must be"
    with pytest.raises(ValueError, match=message):
        ReleasedKernelField(**bad)
    if name not in ("scale_includes_self", "per_coordinate_rms"):
        with pytest.raises(ValueError, match=message):
            released_drift_field(torch.randn(5, 2), torch.randn(5, 2), **bad)


def test_one_number_is_one_temperature_for_the_field_object():
    assert ReleasedKernelField(temperatures=0.05) == ReleasedKernelField(temperatures=(0.05,))
    with pytest.raises(ValueError, match=r"temperatures\[0\]=-0.05 is not allowed"):
        ReleasedKernelField(temperatures=-0.05)


@pytest.mark.xfail(strict=True, raises=TypeError,
                   reason="chartlib bug: released_drift_field calls tuple(temperatures) before checking it, so one "
                          "number raises TypeError ('float' object is not iterable) where ReleasedKernelField and "
                          "KernelField take it as one temperature")
def test_one_number_is_one_temperature_for_the_function_too():
    x, pos = clouds(9)
    torch.testing.assert_close(released_drift_field(x, pos, temperatures=0.05),
                               released_drift_field(x, pos, temperatures=(0.05,)), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"temperatures\[0\]=-0.05 is not allowed"):
        released_drift_field(x, pos, temperatures=-0.05)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="must be"):
        released_drift_field(torch.randn(5, 2), torch.randn(5, 3))
    with pytest.raises(ValueError, match="at least 2 movers"):
        released_drift_field(torch.randn(1, 2), torch.randn(5, 2))
