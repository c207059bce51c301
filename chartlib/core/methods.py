"""Training methods: plain drifting, chart transport (any encoder, any field) and flow matching.

Each method is one frozen dataclass config and one class that builds the networks from it and
says what one training step computes (``step``), what to record (``record``), which modules the
main optimiser trains and which are saved.  ``train_run(cfg)`` runs any of them through
``chartlib.core.training`` and returns a ``Run``; ``chartlib.runs.cache.cached`` wraps it so nothing trains
twice.  The benchmarks time the same ``step``.

``Schedule.precision = "bfloat16"`` runs the networks' forward passes (generator, encoder, decoder,
velocity; in ``step`` and ``record``) under ``torch.autocast`` with bfloat16 on the run's device;
their outputs are cast back to float32 before anything else: the field sees float32 movers, and
the losses' reductions, the critic and the recorded samples are float32.  Parameters and Adam's
state stay float32.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from chartlib.common.checks import check_choice, check_float, check_int

from .data import Bimodal, StandardNormal, SurfaceMixture, seeded
from .drift import drift_loss
from .encoders import Deterministic, Gaussian
from .fields import CriticField, KernelField
from .nets import Shifted, TimeMLP, mlp, pick_device
from .training import Run, Schedule, train


def _check_part(name: str, value, example: str):
    """A field's or an encoder's settings must be an object with ``build``; else a ValueError naming it."""
    if not callable(getattr(value, "build", None)):
        raise ValueError(f"{name}={value!r} is not allowed: {name} must be a settings object with a build() "
                         f"method, e.g. {example}")


@dataclass(frozen=True)
class DriftConfig:
    """Plain drifting: a generator MLP f(eps) is moved by ``field`` towards the data."""

    data: Bimodal = Bimodal()
    schedule: Schedule = Schedule()
    field: KernelField = KernelField()
    noise_dim: int = 2
    init_offset: tuple[float, ...] = (0.0, 4.0)   # where the generator's samples start

    def __post_init__(self):
        _check_part("field", self.field, "KernelField(temperatures=(0.05,))")
        if isinstance(self.field, CriticField):
            raise ValueError("field=CriticField(...) is not allowed for plain drifting: the critic's field needs the "
                             "N(0, I) prior as its target; use a KernelField")
        check_int("noise_dim", self.noise_dim, 1)
        if len(self.init_offset) != self.data.dim:
            raise ValueError(f"init_offset={self.init_offset!r} is not allowed: init_offset must be a tuple of "
                             f"{self.data.dim} numbers")


@dataclass(frozen=True)
class ChartConfig:
    """Chart transport: an autoencoder whose data latents are moved onto N(0, I) by ``field``.

    ``encoder``: ``Deterministic()`` or ``Gaussian(init_log_scale)`` (fibers); ``field``: what moves
    the latents (``KernelField``, ``CriticField``, ...); ``drift_weight``: lambda in
    recon + lambda * drift; ``latent_offset``: shift the fresh encoder's latents (a control);
    ``detach_recon``: ablation, the reconstruction gradient stops at the latents.
    """

    data: Bimodal | SurfaceMixture = Bimodal()
    schedule: Schedule = Schedule()
    latent_dim: int = 2
    encoder: Deterministic | Gaussian = Deterministic()
    field: KernelField | CriticField = KernelField()
    drift_weight: float = 1.0
    latent_offset: tuple[float, ...] | None = None
    detach_recon: bool = False

    def __post_init__(self):
        _check_part("encoder", self.encoder, "Deterministic() or Gaussian(init_log_scale=-1.0)")
        _check_part("field", self.field, "KernelField(...) or CriticField(...)")
        check_int("latent_dim", self.latent_dim, 1)
        check_float("drift_weight", self.drift_weight, 0, low_open=False)
        if self.latent_offset is not None and len(self.latent_offset) != self.latent_dim:
            raise ValueError(f"latent_offset={self.latent_offset!r} is not allowed: latent_offset must be None or "
                             f"a tuple of latent_dim = {self.latent_dim} numbers")


FLOW_TARGETS = ("velocity", "clean")
CLEAN_GAP = 0.05    # clean prediction: 1 - t is floored here when a velocity is formed in training


@dataclass(frozen=True)
class FlowConfig:
    """Flow matching along x_t = (1 - t) x0 + t x1 (x0 ~ N(0, I), x1 data), sampled with Euler steps.

    ``prediction``: what the network outputs, the velocity x1 - x0 ("velocity") or the clean sample
    x1 ("clean", as Li & He 2025 propose for pixel space); the other follows from
    v = (x1_hat - x_t) / (1 - t).  ``loss``: the squared error is taken on the velocity or on the
    clean sample.  A velocity error is a clean-sample error divided by (1 - t), so the velocity loss
    weights the times near the data (t -> 1) most, where x_t already is nearly clean; the clean loss
    weights every time alike.  ``logit_normal_mean``: training times t = sigmoid(N(mean, 1)) (a
    negative mean trains more on the noisier times, t near 0); None draws t uniformly.
    """

    data: Bimodal = Bimodal()
    schedule: Schedule = Schedule()
    euler_steps: int = 50
    prediction: str = "velocity"
    loss: str = "velocity"
    logit_normal_mean: float | None = None

    def __post_init__(self):
        check_int("euler_steps", self.euler_steps, 1)
        if self.logit_normal_mean is not None:
            check_float("logit_normal_mean", self.logit_normal_mean, -5, 5, low_open=False)
        check_choice("prediction", self.prediction, FLOW_TARGETS)
        check_choice("loss", self.loss, FLOW_TARGETS)


class _Method:
    """What the three methods share: device, seeds, the run's random streams.

    The training batches (data, noise, flow times, fiber noise, the fields' samples) come from one
    generator on the run's device, seeded with the schedule's seed: a CPU run draws exactly the
    numbers it always did; a CUDA run draws from the GPU's generator, a different stream of the
    same distributions.  The frames' fixed inputs come from a CPU generator on every device."""

    name = ""

    def __init__(self, cfg, device=None, label: str | None = None):
        self.cfg, self.s = cfg, cfg.schedule
        self.device = pick_device() if device is None else torch.device(device)
        self.label = label or f"{self.name} seed {self.s.seed}"
        self.bf16 = self.s.precision == "bfloat16"
        torch.manual_seed(self.s.seed)               # network initialisation
        self.gen = seeded(self.s.seed, self.device)  # training batches, drawn on the run's device
        self.show_gen = seeded(10_000 + self.s.seed)  # fixed inputs of the frames: the same points move

    trained: list[nn.Module]
    saved: dict[str, nn.Module]

    def autocast(self):
        """The networks' forward passes: bfloat16 autocast under ``precision="bfloat16"``, else a no-op."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def step(self, it: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def record(self, n: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def fit(self) -> Run:
        return train(self.name, self.label, self.cfg, self.step, self.trained, self.saved, self.record, self.device)


def build_generator(cfg: DriftConfig) -> nn.Module:
    s = cfg.schedule
    return Shifted(mlp(cfg.noise_dim, cfg.data.dim, s.width, s.depth), torch.tensor(cfg.init_offset))


def _float(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every tensor as float32 (a no-op for float32 ones)."""
    return {k: v.float() for k, v in tensors.items()}


class PlainDrift(_Method):
    """Movers are generator samples, positives data, negatives the samples themselves."""

    name = "drift"

    def __init__(self, cfg: DriftConfig, device=None, label=None):
        super().__init__(cfg, device, label)
        self.net = build_generator(cfg).to(self.device)
        self.field = cfg.field.build(cfg.data.dim, self.device)
        self.trained, self.saved = [self.net], {"generator": self.net}
        self.show = {n: torch.randn(n, cfg.noise_dim, generator=self.show_gen).to(self.device)
                     for n in (self.s.n_show, self.s.n_eval)}

    def step(self, it):
        with self.autocast():
            x = self.net(torch.randn(self.s.batch, self.cfg.noise_dim, generator=self.gen, device=self.device))
        x = x.float()
        return {"loss": drift_loss(x, self.field.velocity(x, self.cfg.data, self.gen)), **self.field.stats()}

    def record(self, n):
        with self.autocast():
            return _float({"samples": self.net(self.show[n])})


class Chart(_Method):
    """recon |Dec(z) - x|^2 + lambda * drift loss on the latents z = E(x) (a fiber point for a
    Gaussian encoder), the field pushing them towards N(0, I).

    History: loss, recon, drift, plus the encoder's and the field's stats (``sigma``, ``critic``).
    Frames: data, latents, the encoder's parts (``mu``, ``sigma``), recon = Dec(latents), prior,
    samples = Dec(prior)."""

    name = "chart"

    def __init__(self, cfg: ChartConfig, device=None, label=None):
        super().__init__(cfg, device, label)
        s, d, D = self.s, cfg.latent_dim, cfg.data.dim
        self.enc = cfg.encoder.build(D, d, s.width, s.depth, cfg.latent_offset).to(self.device)
        self.dec = mlp(d, D, s.width, s.depth).to(self.device)
        self.field = cfg.field.build(d, self.device)
        self.prior = StandardNormal(d)
        self.trained = [self.enc, self.dec]
        self.saved = {"encoder": self.enc, "decoder": self.dec, **self.field.modules()}
        self.show = {n: (cfg.data.sample(n, self.show_gen).to(self.device), self.enc.draw_noise(n, self.show_gen),
                         self.prior.sample(n, self.show_gen).to(self.device)) for n in (s.n_show, s.n_eval)}

    def step(self, it):
        cfg = self.cfg
        x = cfg.data.sample(self.s.batch, self.gen).to(self.device)
        with self.autocast():
            z, parts = self.enc(x, self.enc.draw_noise(self.s.batch, self.gen))
            out = self.dec(z.detach() if cfg.detach_recon else z)
        z, parts = z.float(), _float(parts)
        recon = (out.float() - x).pow(2).sum(dim=1).mean()
        drift = drift_loss(z, self.field.velocity(z, self.prior, self.gen))
        return {"loss": recon + cfg.drift_weight * drift, "recon": recon, "drift": drift,
                **self.enc.stats(parts), **self.field.stats()}

    def record(self, n):
        x, noise, prior = self.show[n]
        with self.autocast():
            z, parts = self.enc(x, noise)
            return _float({"data": x, "latents": z, **parts, "recon": self.dec(z), "prior": prior,
                           "samples": self.dec(prior)})


def euler_sample(velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x0: torch.Tensor,
                 n_steps: int) -> torch.Tensor:
    """Integrate dx/dt = velocity(x, t) from t=0 to 1 with ``n_steps`` Euler steps: (n, d) -> (n, d).
    ``velocity`` is a net v(x, t) or a ``Flow``'s ``velocity``.  The state stays in x0's dtype
    (under autocast only the velocity is computed in bfloat16)."""
    x, dt = x0, 1.0 / n_steps
    for i in range(n_steps):
        t = torch.full((x.shape[0],), i * dt, device=x.device)
        x = x + dt * velocity(x, t).to(x.dtype)
    return x


class Flow(_Method):
    """Regress the network on the velocity x1 - x0 or on the clean x1 (``FlowConfig.prediction``,
    ``loss``) along x_t = (1 - t) x0 + t x1, x0 ~ N(0, I)."""

    name = "flow"

    def __init__(self, cfg: FlowConfig, device=None, label=None):
        super().__init__(cfg, device, label)
        self.net = TimeMLP(cfg.data.dim, self.s.width, self.s.depth).to(self.device)
        self.trained, self.saved = [self.net], {"velocity": self.net}
        self.show = {n: torch.randn(n, cfg.data.dim, generator=self.show_gen).to(self.device)
                     for n in (self.s.n_show, self.s.n_eval)}

    def velocity(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v(x, t) for sampling, (n, d), (n,) -> (n, d): the net's output, or (x1_hat - x) / (1 - t)."""
        out = self.net(x, t)
        return out if self.cfg.prediction == "velocity" else (out.float() - x) / (1 - t[:, None])

    def times(self, n: int) -> torch.Tensor:
        """n training times in (0, 1): uniform, or logit-normal around ``logit_normal_mean``."""
        mean = self.cfg.logit_normal_mean
        if mean is None:
            return torch.rand(n, generator=self.gen, device=self.device)
        return torch.sigmoid(torch.randn(n, generator=self.gen, device=self.device) + mean)

    def step(self, it):
        B, dim, gen, dev = self.s.batch, self.cfg.data.dim, self.gen, self.device
        x1 = self.cfg.data.sample(B, gen).to(dev)
        x0 = torch.randn(B, dim, generator=gen, device=dev)
        t = self.times(B)
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1
        with self.autocast():
            out = self.net(xt, t).float()
        gap = 1 - t[:, None]
        if self.cfg.loss == "velocity":
            v = out if self.cfg.prediction == "velocity" else (out - xt) / gap.clamp_min(CLEAN_GAP)
            err = v - (x1 - x0)
        else:
            err = (out if self.cfg.prediction == "clean" else xt + gap * out) - x1
        return {"loss": err.pow(2).sum(dim=1).mean()}

    def record(self, n):
        with self.autocast():
            return _float({"samples": euler_sample(self.velocity, self.show[n], self.cfg.euler_steps)})


METHODS: dict[type, type[_Method]] = {DriftConfig: PlainDrift, ChartConfig: Chart, FlowConfig: Flow}


def method_for(cfg, device=None, label: str | None = None) -> _Method:
    """The method object of a config, networks built and seeded, ready to ``fit()`` or to time."""
    if type(cfg) not in METHODS:
        raise TypeError(f"no training method for {type(cfg).__name__}; known: {', '.join(c.__name__ for c in METHODS)}")
    return METHODS[type(cfg)](cfg, device, label)


def train_run(cfg, device=None, label: str | None = None) -> Run:
    """Train ``cfg`` (any method's config) and return its Run."""
    return method_for(cfg, device, label).fit()



def restore(cfg, run: Run, device=None) -> _Method:
    """The method object of ``cfg`` holding a trained run's weights (``run.state``), on ``device``, in
    eval mode: its networks (``saved``) ready to sample or encode."""
    method = method_for(cfg, "cpu")
    for name, module in method.saved.items():
        module.load_state_dict(run.state[name])
        module.to(torch.device("cpu") if device is None else device).eval()
    return method
