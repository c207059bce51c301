"""Chapters 1 and 2's settings: validation and the arms they train (no training here)."""
import pytest

from chartlib.chapters import chart_transport as ct
from chartlib.chapters import mode_collapse as mc
from chartlib.core.fields import KernelField, ReleasedKernelField
from chartlib.core.methods import ChartConfig, DriftConfig, FlowConfig
from chartlib.runs.arms import Plan
from chartlib.runs.cache import run_key


def test_floors_are_validated():
    with pytest.raises(ValueError, match=r"floors\[1\]"):
        mc.ModeCollapseSettings(floors=(0.0, -1e-6))
    with pytest.raises(ValueError, match="floors"):
        mc.ModeCollapseSettings(floors=())
    assert mc.ModeCollapseSettings(floors=(0, 1e-6)).floors == (0.0, 1e-6)


def _all_keys(plans: dict[str, Plan]) -> list[str]:
    return [run_key(c) for p in plans.values() for c in p.configs]


def test_mode_collapse_arms_one_field_each_over_the_seeds():
    s = mc.PROFILES["ci"]
    arms = s.arms()
    assert list(arms) == ["small_tau", "large_tau", "multi_tau", "released"]
    for key, plan in arms.items():
        assert isinstance(plan, Plan) and plan.label and plan.facts == {}
        assert [c.schedule.seed for c in plan.configs] == list(range(s.seeds))
        assert all(isinstance(c, DriftConfig) and c.field == plan.configs[0].field for c in plan.configs), key
    assert arms["small_tau"].configs[0].field == KernelField((s.temperature,))
    assert arms["released"].configs[0].field == ReleasedKernelField(tuple(s.multi_temperatures), s.reference_floor)
    sweep = s.sweep_arms()
    assert [k for k in sweep if k.startswith("sweep_")] == [f"sweep_{r:g}" for r in s.sweep_ratios]
    assert [k for k in sweep if k.startswith("floor_")] == [f"floor_{f:g}" for f in s.floors]
    assert all(len(p.configs) == s.floor_seeds for k, p in sweep.items() if k.startswith("floor_"))
    assert not set(arms) & set(sweep)
    main, swept = _all_keys(arms), _all_keys(sweep)
    assert len(set(main)) == len(main) and len(set(swept)) == len(swept)   # every run its own cache entry
    # a sweep point that is a main arm's run (the sweep at the chapter's temperatures, the floor sweep at
    # the released floor) shares its cache entry: trained once; no other run does
    main_configs = [c for p in arms.values() for c in p.configs]
    sweep_configs = [c for p in sweep.values() for c in p.configs]
    same = {run_key(c) for c in main_configs if c in sweep_configs}
    assert same and set(main) & set(swept) == same


def test_chart_transport_arms_and_the_weight_sweep():
    s = ct.PROFILES["ci"]
    arms = s.arms()
    assert list(arms) == [ct.CHART, ct.OFFSET, ct.DETACHED, ct.FLOW, ct.RELEASED, ct.RELEASED_NO_FLOOR]
    assert all(isinstance(c, ChartConfig) for k, p in arms.items() if k != ct.FLOW for c in p.configs)
    assert all(isinstance(c, FlowConfig) for c in arms[ct.FLOW].configs)
    assert len(arms[ct.DETACHED].configs) == 1 and arms[ct.DETACHED].configs[0].detach_recon
    assert arms[ct.OFFSET].configs[0].latent_offset == tuple(s.latent_offset)
    assert [c.field.floor for c in arms[ct.RELEASED_NO_FLOOR].configs] == [0.0] * s.reference_seeds
    sweep = s.sweep_arms()
    assert list(sweep) == [f"lambda_{lam:g}" for lam in s.weight_sweep]
    assert [p.configs[0].drift_weight for p in sweep.values()] == list(s.weight_sweep)
    main, swept = _all_keys(arms), _all_keys(sweep)
    assert len(set(main)) == len(main) and len(set(swept)) == len(swept)
    # the sweep's lambda = 1 arm is the chapter's own chart: the same runs, trained once
    same = {run_key(c) for c in arms[ct.CHART].configs if c in sweep[f"lambda_{s.drift_weight:g}"].configs}
    assert same and set(main) & set(swept) == same
