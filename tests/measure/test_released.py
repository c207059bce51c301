"""Chapter 1's comparison with the released field, measured on known inputs (``chartlib.measure.released``;
its claims' rules: tests/report/test_claims.py, the floors' settings: tests/chapters/test_mode_collapse.py)."""
import pytest
import torch

from chartlib.measure.released import DIFFERENCES, difference_rows, field_change, field_shape


def _clouds(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 0.05 * torch.randn(64, 2, generator=g)                                  # a tight cloud at the origin
    y = torch.cat([torch.randn(32, 2, generator=g) * 0.3 + torch.tensor([-2.0, 0.0]),
                   torch.randn(32, 2, generator=g) * 0.3 + torch.tensor([2.0, 0.0])])
    return x, y


def test_turning_nothing_off_changes_nothing():
    x, y = _clouds()
    same = field_change(x, y, (0.02, 0.05, 0.2), {})
    assert same["relative_change"] == 0 and same["cosine"] == pytest.approx(1.0)


def test_the_floor_is_what_changes_the_field_at_a_point_between_the_modes():
    x, y = _clouds()
    rows = {r["key"]: r for r in difference_rows(x, x, y, (0.02, 0.05, 0.2))}
    assert set(rows) == {k for k, *_ in DIFFERENCES} | {"loss"}
    assert rows["floor"]["change_end"] > 0.5                      # the floor reshapes the field here
    for key in ("scale", "mask", "eps"):
        assert rows[key]["change_end"] < 0.05 and rows[key]["cosine_end"] > 0.99
    assert rows["rms"]["cosine_end"] == pytest.approx(1.0)       # only the size differs


def test_the_floored_field_points_at_the_data_mean_and_the_free_one_spreads():
    x, y = _clouds()
    floored, free = field_shape(x, y, (0.02, 0.05, 0.2), 1e-6), field_shape(x, y, (0.02, 0.05, 0.2), 0.0)
    assert free["outward"] > floored["outward"]
    assert free["outward"] > 0.2
    assert floored["spread"] == free["spread"] == pytest.approx(float(x.std(0).norm()))
