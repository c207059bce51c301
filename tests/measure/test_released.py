"""Chapter 1's comparison with the released field: the measurements on known inputs, and the claims' rules."""
import pytest
import torch

from chartlib import claims
from chartlib.mode_collapse import ModeCollapseSettings
from chartlib.reference_comparison import DIFFERENCES, difference_rows, field_change, field_shape


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


def test_floors_are_validated():
    with pytest.raises(ValueError, match=r"floors\[1\]"):
        ModeCollapseSettings(floors=(0.0, -1e-6))
    with pytest.raises(ValueError, match="floors"):
        ModeCollapseSettings(floors=())
    assert ModeCollapseSettings(floors=(0, 1e-6)).floors == (0.0, 1e-6)


def _metrics(released_far, floor_runs):
    seed = lambda far, held: {"far": far, "spread": 0.01 if far > 0.9 else 2.0, "modes_held": held,  # noqa: E731
                              "majority": 0.5, "energy": 0.0}
    arm = {"per_seed": [seed(0.1, 2)] * 2}
    return {"arms": {"small_tau": arm, "multi_tau": arm, "large_tau": arm,
                     "released": {"label": "released", "per_seed": [seed(f, 2) for f in released_far]}},
            "sweep": {"4": {"summary": {"collapsed_seeds": 0, "seeds": 2}}},
            "floor_sweep": {f: {"per_seed": [seed(far, held) for far, held in runs]} for f, runs in floor_runs.items()}}


def _verdict(rows, start):
    return next(r["verdict"] for r in rows if r["claim"].startswith(start))


def test_released_claims_follow_their_rules():
    good = _metrics([1.0, 0.99], {"0": [(0.02, 2), (0.03, 2)], "1e-06": [(1.0, 2), (1.0, 1)]})
    rows = claims._released(good)
    assert _verdict(rows, "With the released code's field") == "reproduced"
    assert _verdict(rows, "The floor decides it") == "reproduced"
    some = _metrics([1.0, 0.2], {"0": [(0.02, 2), (0.9, 1)], "1e-06": [(1.0, 2), (1.0, 1)]})
    rows = claims._released(some)
    assert _verdict(rows, "With the released code's field") == "partly"
    assert _verdict(rows, "The floor decides it") == "partly"
    none = _metrics([0.1, 0.2], {"0": [(0.02, 1)], "1e-06": [(0.1, 2)]})
    rows = claims._released(none)
    assert _verdict(rows, "With the released code's field") == "not reproduced"
    assert _verdict(rows, "The floor decides it") == "not reproduced"


def test_measurements_without_the_released_arm_say_not_tested():
    m = _metrics([1.0], {"0": [(0.0, 2)]})
    del m["arms"]["released"], m["floor_sweep"]
    assert _verdict(claims._released(m), "The released code's field") == "not tested"
