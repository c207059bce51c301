"""Fields (what moves the movers) and encoders (how a chart maps data to latents), each on its own."""
import pytest
import torch
from torch import nn

from chartlib.core.data import Bimodal, StandardNormal, seeded
from chartlib.core.drift import drift_field
from chartlib.core.encoders import Deterministic, DeterministicEncoder, Gaussian, GaussianEncoder
from chartlib.core.fields import CriticField, KernelField, ScoreCritic, dsm_loss

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------
# the kernel field

@pytest.mark.parametrize("field", [KernelField(), KernelField((0.5,)), KernelField((0.02, 0.05, 0.2), scale_free=True)])
def test_kernel_field_is_drift_field_on_positives_from_the_run_stream(field):
    data = Bimodal()
    movers = (torch.randn(64, 2, generator=seeded(1)) + torch.tensor([0.0, 4.0])).requires_grad_()
    g, g_ref = seeded(7), seeded(7)
    v = field.velocity(movers, data, g)
    positives = data.sample(64, g_ref)                  # the same draw from the same stream
    expected = drift_field(movers.detach(), positives, None, field.temperatures, field.scale_free)
    assert v.shape == (64, 2) and not v.requires_grad
    assert torch.equal(v, expected)
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=g_ref))   # streams still in step
    # other positives give another field: the positives really come from the target
    assert not torch.equal(v, field.velocity(movers, data, seeded(8)))


def test_kernel_field_has_no_state():
    field = KernelField((0.1,))
    assert field.build(2, "cpu") is field
    assert field.modules() == {} and field.stats() == {}
    assert KernelField((0.1,)) == field and hash(KernelField((0.1,))) == hash(field)   # usable in a cache key
    assert KernelField([0.1, 0.2]).temperatures == (0.1, 0.2)


# ---------------------------------------------------------------------------------------------
# the score critic

def _critic(steps=3, noise=0.5, dim=3) -> ScoreCritic:
    torch.manual_seed(0)
    return CriticField(noise=noise, steps=steps, width=16, depth=2, lr=1e-2).build(dim, "cpu")


def test_critic_trains_its_steps_then_gives_the_smoothed_prior_score_minus_itself():
    critic = _critic(steps=3)
    assert isinstance(critic, ScoreCritic) and critic.stats() == {}
    steps = []
    real_step = critic.opt.step
    critic.opt.step = lambda *a, **k: steps.append(1) or real_step(*a, **k)
    before = [p.detach().clone() for p in critic.net.parameters()]
    z = torch.randn(50, 3, generator=seeded(2)) * 0.3 + 1.0
    v = critic.velocity(z, StandardNormal(3), seeded(3))
    assert len(steps) == 3                                    # cfg.steps Adam steps per call
    assert all(not torch.equal(a, b) for a, b in zip(before, critic.net.parameters()))
    with torch.no_grad():
        expected = -z / (1 + 0.5 ** 2) - critic.net(z)        # read after the updates
    assert v.shape == (50, 3) and not v.requires_grad
    assert torch.allclose(v, expected, atol=1e-6)
    critic.velocity(z, StandardNormal(3), seeded(4))
    assert len(steps) == 6
    assert set(critic.stats()) == {"critic"} and critic.stats()["critic"].ndim == 0
    assert torch.isfinite(critic.stats()["critic"]) and not critic.stats()["critic"].requires_grad


def test_critic_is_deterministic_given_seed_and_stream():
    z = torch.randn(40, 3, generator=seeded(2))
    a = _critic().velocity(z, StandardNormal(3), seeded(5))
    b = _critic().velocity(z, StandardNormal(3), seeded(5))
    c = _critic().velocity(z, StandardNormal(3), seeded(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


class _PriorScore(nn.Module):
    """The exact score of N(0, I) smoothed at ``noise`` (a dummy weight so Adam has something to step)."""

    def __init__(self, noise):
        super().__init__()
        self.noise, self.w = noise, nn.Parameter(torch.zeros(()))

    def forward(self, q):
        return -q / (1 + self.noise ** 2) + 0 * self.w


def test_critic_field_vanishes_when_the_critic_is_the_priors_score():
    critic = _critic(noise=0.5)
    critic.net = _PriorScore(0.5)
    critic.opt = torch.optim.Adam(critic.net.parameters(), lr=1e-2)
    v = critic.velocity(torch.randn(30, 3, generator=seeded(1)) * 2, StandardNormal(3), seeded(2))
    assert v.abs().max() < 1e-6


def test_critic_refuses_a_target_other_than_the_standard_normal():
    critic = _critic()
    with pytest.raises(ValueError, match="standard normal target, got Bimodal"):
        critic.velocity(torch.randn(8, 2), Bimodal(), seeded(0))


def test_critic_modules_are_its_network():
    critic = _critic()
    assert critic.modules() == {"critic": critic.net}
    assert critic.net(torch.randn(5, 3)).shape == (5, 3)
    assert CriticField().build(3, "cpu").net is not CriticField().build(3, "cpu").net   # a fresh net per build


def test_dsm_loss_is_reproducible_with_a_generator():
    net = _critic().net
    z = torch.randn(100, 3, generator=seeded(0))
    a, b = dsm_loss(net, z, 0.5, seeded(1)), dsm_loss(net, z, 0.5, seeded(1))
    assert a.ndim == 0 and torch.equal(a, b) and not torch.equal(a, dsm_loss(net, z, 0.5, seeded(2)))


@pytest.mark.parametrize("make, name", [
    (lambda: CriticField(noise=0.0), "critic_noise=0.0 is not allowed"),
    (lambda: CriticField(steps=0), "critic_steps=0 is not allowed"),
    (lambda: CriticField(width=0), "critic_width=0 is not allowed"),
    (lambda: CriticField(depth=0), "critic_depth=0 is not allowed"),
    (lambda: CriticField(lr=-1.0), "critic_lr=-1.0 is not allowed"),
    (lambda: KernelField(()), r"temperatures=\(\) is not allowed"),
    (lambda: KernelField((0.05, -1.0)), r"temperatures\[1\]=-1.0 is not allowed"),
    (lambda: Gaussian(init_log_scale=9.0), "init_log_scale=9.0 is not allowed"),
])
def test_field_and_encoder_settings_are_validated_with_the_parameter_named(make, name):
    with pytest.raises(ValueError, match=name):
        make()


# ---------------------------------------------------------------------------------------------
# encoders

def test_deterministic_encoder_shapes_parts_and_offset():
    torch.manual_seed(0)
    enc = Deterministic().build(3, 2, 16, 2)
    assert isinstance(enc, DeterministicEncoder)
    x = torch.randn(7, 3)
    assert enc.draw_noise(7, seeded(0)) is None
    z, parts = enc(x, None)
    assert z.shape == (7, 2) and parts == {} and enc.stats(parts) == {}
    torch.manual_seed(0)
    shifted = Deterministic().build(3, 2, 16, 2, offset=(5.0, -1.0))
    z2, _ = shifted(x, None)
    assert torch.allclose(z2 - z, torch.tensor([5.0, -1.0]).expand(7, 2), atol=1e-6)
    assert "offset" in shifted.state_dict()                 # saved with the weights


def test_gaussian_encoder_shapes_parts_and_sigma():
    torch.manual_seed(0)
    enc = Gaussian(init_log_scale=-1.0).build(3, 4, 32, 2)
    assert isinstance(enc, GaussianEncoder)
    x = torch.randn(200, 3)
    noise = enc.draw_noise(200, seeded(1))
    assert noise.shape == (200, 4) and torch.equal(noise, enc.draw_noise(200, seeded(1)))
    z, parts = enc(x, noise)
    assert z.shape == (200, 4) and set(parts) == {"mu", "sigma"}
    assert parts["mu"].shape == parts["sigma"].shape == (200, 4) and (parts["sigma"] > 0).all()
    assert torch.allclose(z, parts["mu"] + parts["sigma"] * noise)
    assert abs(parts["sigma"].log().mean().item() + 1.0) < 0.5      # starts near init_log_scale
    zero, _ = enc(x, torch.zeros(200, 4))
    assert torch.allclose(zero, parts["mu"])                          # the fiber's centre is mu
    stats = enc.stats(parts)
    assert set(stats) == {"sigma"} and stats["sigma"].ndim == 0 and not stats["sigma"].requires_grad
    assert torch.isclose(stats["sigma"], parts["sigma"].mean())
    torch.manual_seed(0)
    shifted = Gaussian(init_log_scale=-1.0).build(3, 4, 32, 2, offset=(3.0, 0.0, 0.0, -2.0))
    _, p2 = shifted(x, noise)
    assert torch.allclose(p2["mu"] - parts["mu"], torch.tensor([3.0, 0.0, 0.0, -2.0]).expand(200, 4), atol=1e-5)
    assert torch.allclose(p2["sigma"], parts["sigma"])                # the offset moves the mean only


def test_gaussian_encoder_gradient_reaches_the_log_scale():
    torch.manual_seed(0)
    enc = Gaussian().build(3, 3, 16, 2)
    dec = nn.Linear(3, 3)
    x = torch.randn(8, 3)
    z, _ = enc(x, enc.draw_noise(8, seeded(0)))
    (dec(z) - x).pow(2).sum().backward()
    last = enc.net[-1]          # outputs: mean (first d), log-scale (last d)
    assert last.weight.grad[3:].abs().sum() > 0 and last.bias.grad[3:].abs().sum() > 0
    assert last.weight.grad[:3].abs().sum() > 0
