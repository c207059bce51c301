"""``Schedule.precision``: bfloat16 autocast for the networks' forward passes, float32 everywhere else."""
from dataclasses import replace

import pytest
import torch

from chartlib.core.encoders import Gaussian
from chartlib.core.fields import CriticField, KernelField
from chartlib.core.methods import ChartConfig, DriftConfig, FlowConfig, method_for, train_run
from chartlib.core.training import Schedule

SCHED = Schedule(steps=20, batch=32, width=16, depth=2, n_snapshots=3, n_show=20, n_eval=40)
BF16 = replace(SCHED, precision="bfloat16")


def test_precision_is_validated_with_the_choices_named():
    with pytest.raises(ValueError, match=r"precision='float16' is not allowed: precision must be one of "
                                         r"'float32', 'bfloat16'"):
        Schedule(precision="float16")


@pytest.mark.parametrize("cfg", [DriftConfig(schedule=BF16),
                                 ChartConfig(schedule=BF16, encoder=Gaussian(), field=CriticField(width=16, depth=1)),
                                 FlowConfig(schedule=BF16, euler_steps=5)], ids=["drift", "chart", "flow"])
def test_bfloat16_runs_record_float32_and_stay_close_to_float32(cfg, one_thread):
    bf = train_run(cfg, device="cpu")
    fp = train_run(replace(cfg, schedule=SCHED), device="cpu")
    for k, v in bf.final.items():
        assert v.dtype == torch.float32 and bf.frames[k].dtype == torch.float32
        assert (v - fp.final[k]).abs().max() < 0.05, k          # 20 steps: rounding, not a different run
    assert not torch.equal(bf.final["samples"], fp.final["samples"])  # the switch does something
    assert all(t.dtype == torch.float32 for m in bf.state.values() for t in m.values())


def test_under_bfloat16_the_field_and_the_losses_see_float32(one_thread):
    cfg = ChartConfig(schedule=BF16, field=KernelField((0.1,)))
    method = method_for(cfg, "cpu")
    seen = []
    velocity = method.field.velocity
    method.field = type("Spy", (), {"velocity": lambda self, z, t, g: (seen.append(z.dtype), velocity(z, t, g))[1],
                                    "stats": lambda self: {}})()
    losses = method.step(0)
    assert seen == [torch.float32]
    assert all(v.dtype == torch.float32 for v in losses.values())
