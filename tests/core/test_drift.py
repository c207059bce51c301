"""Analytic invariants of the drifting field."""
import math

import pytest
import torch

from chartlib.core import kernel_sums
from chartlib.core.drift import drift_field, drift_loss


def reference_field(x, pos, neg, tau, self_mask):
    """The definition written out plainly in float64 (only safe for nearby clouds)."""
    x, pos, neg = x.double(), pos.double(), neg.double()
    targets = torch.cat([neg, pos])
    k = torch.exp(-torch.cdist(x, targets) / tau)
    if self_mask:
        k[:, : neg.shape[0]] -= torch.diag_embed(torch.diagonal(k[:, : neg.shape[0]]))
    a = k / torch.sqrt(k.sum(1, keepdim=True) * k.sum(0, keepdim=True))
    a_neg, a_pos = a[:, : neg.shape[0]], a[:, neg.shape[0]:]
    return a_neg.sum(1, keepdim=True) * (a_pos @ pos) - a_pos.sum(1, keepdim=True) * (a_neg @ neg)


def gen(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_matches_the_plain_definition_with_separate_negatives():
    g = gen(0)
    x, pos, neg = (torch.randn(n, 3, generator=g, dtype=torch.float64) for n in (40, 50, 30))
    v = drift_field(x, pos + 0.5, neg, temperatures=(0.7,), unit_rms=False)
    torch.testing.assert_close(v, reference_field(x, pos + 0.5, neg, 0.7, False), rtol=1e-9, atol=1e-12)


def test_self_mask_applies_when_the_movers_are_the_negatives():
    g = gen(1)
    x, pos = (torch.randn(n, 2, generator=g, dtype=torch.float64) for n in (30, 40))
    pos = pos + 1.0
    masked = drift_field(x, pos, None, temperatures=(0.5,), unit_rms=False)
    torch.testing.assert_close(masked, reference_field(x, pos, x, 0.5, True), rtol=1e-9, atol=1e-12)
    unmasked = drift_field(x, pos, x.clone(), temperatures=(0.5,), unit_rms=False)
    torch.testing.assert_close(unmasked, reference_field(x, pos, x, 0.5, False), rtol=1e-9, atol=1e-12)
    assert (masked - unmasked).abs().max() > 1e-3   # the mask changes the field


def test_near_zero_when_positives_and_negatives_share_a_distribution():
    g = gen(2)
    x = torch.randn(200, 2, generator=g)
    same = drift_field(x, torch.randn(8000, 2, generator=g), torch.randn(8000, 2, generator=g),
                       temperatures=(1.0,), unit_rms=False)
    shifted = drift_field(x, torch.randn(8000, 2, generator=g) + torch.tensor([1.0, 0.0]),
                          torch.randn(8000, 2, generator=g), temperatures=(1.0,), unit_rms=False)
    # sampling noise only: well under a tenth of the field a unit shift of the positives causes
    assert same.norm(dim=1).mean() < 0.1 * shifted.norm(dim=1).mean()


@pytest.mark.parametrize("scale_free", [False, True])
def test_swapping_positives_and_negatives_flips_the_sign(scale_free):
    g = gen(3)
    x, a, b = torch.randn(50, 2, generator=g), torch.randn(60, 2, generator=g) + 2, torch.randn(60, 2, generator=g)
    temps = (0.05, 0.2, 1.0)
    torch.testing.assert_close(drift_field(x, a, b, temps, scale_free), -drift_field(x, b, a, temps, scale_free),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("negatives", ["separate", "self"])
def test_invariant_to_a_common_shift(negatives):
    g = gen(4)
    x, pos, neg = torch.randn(50, 3, generator=g), torch.randn(70, 3, generator=g) + 1, torch.randn(60, 3, generator=g)
    neg = None if negatives == "self" else neg
    c = torch.tensor([5.0, -3.0, 2.0])
    v = drift_field(x, pos, neg, (0.3,), unit_rms=False)
    v_shift = drift_field(x + c, pos + c, None if neg is None else neg + c, (0.3,), unit_rms=False)
    torch.testing.assert_close(v, v_shift, rtol=1e-4, atol=1e-5)


def test_equivariant_to_a_common_scale_with_scale_free_distances():
    g = gen(5)
    x, pos = torch.randn(50, 2, generator=g), torch.randn(70, 2, generator=g) + 1
    v = drift_field(x, pos, None, (0.05, 0.2), scale_free=True, unit_rms=False)
    torch.testing.assert_close(drift_field(3.0 * x, 3.0 * pos, None, (0.05, 0.2), scale_free=True, unit_rms=False),
                               3.0 * v, rtol=1e-4, atol=1e-5)


def test_clouds_100_units_apart_give_a_finite_field_pointing_at_the_positives():
    g = gen(6)
    x = 0.1 * torch.randn(64, 2, generator=g)
    pos = 0.1 * torch.randn(64, 2, generator=g) + torch.tensor([100.0, 0.0])
    # the plain formula underflows here: every kernel value is exp(-2000) = 0 and the normaliser 0/0
    assert torch.isnan(reference_field(x.float(), pos.float(), x.float(), 0.05, True).float()).any()
    v = drift_field(x, pos, None, temperatures=(0.05,))
    assert torch.isfinite(v).all()
    assert math.isclose(v.pow(2).sum(1).mean().sqrt().item(), 1.0, rel_tol=1e-4)   # unit RMS
    assert (v[:, 0] > 0).float().mean() > 0.9


def test_unit_rms_per_temperature_and_summing():
    g = gen(7)
    x, pos = torch.randn(64, 2, generator=g), torch.randn(64, 2, generator=g) + 3
    v = drift_field(x, pos, None, temperatures=(0.1, 0.5, 2.0))
    parts = sum(drift_field(x, pos, None, temperatures=(t,)) for t in (0.1, 0.5, 2.0))
    torch.testing.assert_close(v, parts)


def test_drift_loss_gradient_moves_along_the_field():
    u = torch.randn(10, 2, requires_grad=True)
    v = torch.randn(10, 2)
    loss = drift_loss(u, v)
    loss.backward()
    assert math.isclose(loss.item(), v.pow(2).sum(1).mean().item(), rel_tol=1e-6)
    torch.testing.assert_close(u.grad, -2 * v / 10)


def test_bad_inputs_are_refused():
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match="temperatures"):
        drift_field(x, x, None, temperatures=(0.0,))
    with pytest.raises(ValueError, match="must be"):
        drift_field(x, torch.randn(5, 3))


@pytest.mark.parametrize("self_mask", [False, True])
@pytest.mark.parametrize("scale_free", [False, True])
@pytest.mark.parametrize("block", [1, 37, 500])
def test_row_blocks_give_the_same_field_as_the_whole_matrix(self_mask, scale_free, block):
    """The memory-bounded path (movers in blocks of rows) is the same field, not an approximation."""
    g = gen(11)
    x, pos = torch.randn(101, 5, generator=g), torch.randn(90, 5, generator=g) + 1.5
    neg = torch.randn(70, 5, generator=g)
    neg = None if self_mask else neg
    cols = 90 + (101 if self_mask else 70)
    whole = drift_field(x, pos, neg, temperatures=(0.05, 0.3, 1.0), scale_free=scale_free, max_block_elements=None)
    split = drift_field(x, pos, neg, temperatures=(0.05, 0.3, 1.0), scale_free=scale_free,
                        max_block_elements=block * cols)
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-6)
    assert whole.abs().max() > 0.1   # a real field, not two zeros


def test_block_size_must_be_positive():
    x = torch.randn(10, 2)
    with pytest.raises(ValueError, match="max_block_elements"):
        drift_field(x, x + 1, max_block_elements=0)


def test_a_far_outlier_mover_is_recomputed_exactly_in_float32():
    """A mover 40 units out, with one positive and one negative 6 units from it: its row sums are
    ~exp(-120) of the others' at tau = 0.05, below float32's range, so it takes the exact per-row path."""
    g = gen(12)
    x = torch.cat([0.5 * torch.randn(40, 2, generator=g), torch.tensor([[40.0, 0.0]])])
    pos = torch.cat([0.5 * torch.randn(50, 2, generator=g) + torch.tensor([1.0, 0.0]), torch.tensor([[46.0, 0.0]])])
    neg = torch.cat([0.5 * torch.randn(30, 2, generator=g), torch.tensor([[34.0, 0.0]])])
    v = drift_field(x, pos, neg, temperatures=(0.05,), unit_rms=False)
    ref = reference_field(x, pos, neg, 0.05, False)          # float64 still holds exp(-120)
    assert torch.isfinite(v).all() and ref[-1, 0] > 1.0      # the outlier's field is large
    torch.testing.assert_close(v.double(), ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_exact_per_row_path_gives_the_same_field(monkeypatch, dtype):
    g = gen(13)
    x, pos = torch.randn(60, 3, generator=g, dtype=dtype), torch.randn(70, 3, generator=g, dtype=dtype) + 1
    temps = (0.05, 0.3)
    fast = drift_field(x, pos, None, temps, scale_free=True, unit_rms=False)
    monkeypatch.setattr(kernel_sums, "_EXACT_BELOW", math.inf)     # every row takes the per-row path
    exact = drift_field(x, pos, None, temps, scale_free=True, unit_rms=False, max_block_elements=60 * 40)
    if dtype == torch.float64:
        torch.testing.assert_close(exact, fast, rtol=1e-9, atol=1e-12)
    else:
        torch.testing.assert_close(exact, fast, rtol=1e-5, atol=1e-6)


def test_recomputed_distance_blocks_give_the_same_field(monkeypatch):
    g = gen(14)
    x, pos = torch.randn(80, 4, generator=g), torch.randn(90, 4, generator=g) + 1
    kept = drift_field(x, pos, None, (0.05, 0.2), scale_free=True, max_block_elements=80 * 25)
    monkeypatch.setattr(kernel_sums, "KEPT_BLOCKS", 0)       # every block computed again in the field pass
    again = drift_field(x, pos, None, (0.05, 0.2), scale_free=True, max_block_elements=80 * 25)
    torch.testing.assert_close(again, kept, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("scale_free", [False, True])
@pytest.mark.parametrize("self_mask", [False, True])
@pytest.mark.parametrize("block", [None, 23])
def test_many_dimensions_give_the_plain_definition(self_mask, block, scale_free):
    """Above 126 dimensions the products scale the kernel's columns (in one block its rows too) instead
    of copying the targets, and the movers' distances to each other come in blocks of 64 rows (150 movers:
    three blocks, the last one short) with the rest mirrored."""
    g = gen(15)
    x, pos, neg = (torch.randn(n, 200, generator=g, dtype=torch.float64) for n in (150, 60, 40))
    neg, pos = None if self_mask else neg, pos + 0.3
    targets = torch.cat([x if self_mask else neg, pos])
    mean = torch.cdist(x, targets).sum() / (150 * len(targets) - (150 if self_mask else 0))
    temps = (0.7, 2.0) if scale_free else (15.0, 40.0)                  # both about 15 and 40 units
    v = drift_field(x, pos, neg, temps, scale_free=scale_free, unit_rms=False,
                    max_block_elements=None if block is None else block * 150)
    scale = mean if scale_free else 1.0
    ref = sum(reference_field(x, pos, x if self_mask else neg, t * scale, self_mask) for t in temps)
    assert block is None or block < len(targets)       # the blocked case really takes several blocks
    torch.testing.assert_close(v, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("block", [None, 30])
def test_a_far_outlier_in_many_dimensions_is_recomputed_exactly_in_float32(block):
    """As the 2-D outlier test above, in 130 dimensions (the scaled-columns products), in one block and
    in three.  The outlier's |x|^2 of 1600 leaves its float32 distances about 1e-4 off, 2e-3 in its
    logits at this temperature; its field still agrees with the definition because the recomputed row
    uses the same distances its targets' column sums were made from, so the error cancels."""
    g = gen(16)
    x, pos, neg = (0.1 * torch.randn(n, 130, generator=g) for n in (41, 51, 31))
    pos[:, 0] += 1.0
    x[-1, 0], pos[-1, 0], neg[-1, 0] = 40.0, 46.0, 34.0     # an outlier mover, a positive and a negative 6 from it
    v = drift_field(x, pos, neg, temperatures=(0.05,), unit_rms=False,
                    max_block_elements=None if block is None else block * 41)
    ref = reference_field(x, pos, neg, 0.05, False)
    assert torch.isfinite(v).all() and ref[-1, 0] > 1.0
    torch.testing.assert_close(v.double(), ref, rtol=1e-4, atol=1e-6)
