"""Training methods: plain drifting, chart transport (deterministic or stochastic) and flow matching.

Each method has one frozen dataclass config and one ``train_*`` function that returns a ``Run``:
snapshots of its samples over training (for the sliders), a loss history, a final evaluation
sample, and the trained weights.  ``chartlib.cache.cached`` wraps them so nothing trains twice.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import nn

from .data import Bimodal, SurfaceMixture, seeded
from .drift import drift_field, drift_loss
from .nets import Shifted, TimeMLP, mlp, pick_device


class TrainingDiverged(RuntimeError):
    """A loss or a parameter became NaN or infinite."""


def _check(name: str, ok: bool, value, allowed: str):
    if not ok:
        raise ValueError(f"{name}={value!r} is not allowed: {name} must be {allowed}")


@dataclass(frozen=True)
class Schedule:
    """What every method shares: seed, optimisation and what to record."""

    seed: int = 0
    steps: int = 2000
    batch: int = 256
    lr: float = 1e-3
    width: int = 128
    depth: int = 3
    n_snapshots: int = 21    # frames for the training-step slider (first and last included)
    n_show: int = 400        # points per frame
    n_eval: int = 2000       # points in the final evaluation sample

    def __post_init__(self):
        _check("seed", isinstance(self.seed, int) and self.seed >= 0, self.seed, "an integer >= 0")
        _check("steps", isinstance(self.steps, int) and self.steps >= 1, self.steps, "an integer >= 1")
        _check("batch", isinstance(self.batch, int) and self.batch >= 2, self.batch, "an integer >= 2")
        _check("lr", self.lr > 0, self.lr, "> 0")
        _check("width", self.width >= 1, self.width, ">= 1")
        _check("depth", self.depth >= 1, self.depth, ">= 1")
        _check("n_snapshots", 2 <= self.n_snapshots <= self.steps + 1, self.n_snapshots,
               f"between 2 and steps + 1 = {self.steps + 1}")
        _check("n_show", self.n_show >= 2, self.n_show, ">= 2")
        _check("n_eval", self.n_eval >= 2, self.n_eval, ">= 2")

    def snapshot_steps(self) -> list[int]:
        """Training steps at which frames are recorded, 0 (before training) to ``steps``."""
        s = torch.linspace(0, self.steps, self.n_snapshots).round().long().tolist()
        return sorted(set(s))


def _check_field(temperatures, scale_free):
    _check("temperatures", len(temperatures) >= 1 and all(t > 0 for t in temperatures), temperatures,
           "a non-empty tuple of positive numbers")


@dataclass(frozen=True)
class DriftConfig:
    """Plain drifting: a generator MLP f(eps) is moved by the drifting field towards the data."""

    data: Bimodal = Bimodal()
    schedule: Schedule = Schedule()
    temperatures: tuple[float, ...] = (0.05,)
    scale_free: bool = False
    noise_dim: int = 2
    init_offset: tuple[float, ...] = (0.0, 4.0)   # where the generator's samples start

    def __post_init__(self):
        _check_field(self.temperatures, self.scale_free)
        _check("noise_dim", self.noise_dim >= 1, self.noise_dim, ">= 1")
        _check("init_offset", len(self.init_offset) == self.data.dim, self.init_offset,
               f"a tuple of {self.data.dim} numbers")


@dataclass(frozen=True)
class ChartConfig:
    """Chart transport: an autoencoder whose data latents are drifted onto N(0, I)."""

    data: Bimodal | SurfaceMixture = Bimodal()
    schedule: Schedule = Schedule()
    temperatures: tuple[float, ...] = (0.05,)
    scale_free: bool = False
    latent_dim: int = 2
    drift_weight: float = 1.0                      # lambda in recon + lambda * drift
    latent_offset: tuple[float, ...] | None = None  # shift the fresh encoder's latents (None: no shift)
    detach_recon: bool = False                     # ablation: reconstruction gradient stops at the latents

    def __post_init__(self):
        _check_field(self.temperatures, self.scale_free)
        _check("latent_dim", self.latent_dim >= 1, self.latent_dim, ">= 1")
        _check("drift_weight", self.drift_weight >= 0, self.drift_weight, ">= 0")
        if self.latent_offset is not None:
            _check("latent_offset", len(self.latent_offset) == self.latent_dim, self.latent_offset,
                   f"None or a tuple of latent_dim = {self.latent_dim} numbers")


@dataclass(frozen=True)
class StochasticChartConfig(ChartConfig):
    """Stochastic chart: the encoder gives a mean and a log-scale, a point's latent is a random
    point of its fiber z = mu + sigma * eps, and the fibers are drifted onto N(0, I).

    ``field`` picks what pushes the fibers: ``"kernel"`` is the drifting field towards prior
    samples (``temperatures``, ``scale_free`` as for ChartConfig); ``"critic"`` is the latent score
    critic: a small MLP s(z) fitted by denoising score matching to the current latents at noise
    level ``critic_noise`` (``critic_steps`` Adam steps per training step), giving
    V(z) = -z / (1 + critic_noise^2) - s(z).  ``init_log_scale`` is the log of the fresh encoder's
    sigma.  With 1 critic step per iteration the critic cannot keep up with the moving latents: its
    field is mostly noise, the latents are pushed off the prior and, with a small critic (64 x 2),
    sigma collapses towards 0 (measured in the stochastic-encoding chapter).
    """

    drift_weight: float = 3.0
    field: str = "critic"
    critic_noise: float = 0.5
    critic_steps: int = 5
    critic_width: int = 128
    critic_depth: int = 3
    critic_lr: float = 1e-3
    init_log_scale: float = -1.0

    def __post_init__(self):
        super().__post_init__()
        _check("field", self.field in ("kernel", "critic"), self.field, "one of 'kernel', 'critic'")
        _check("critic_noise", self.critic_noise > 0, self.critic_noise, "> 0")
        _check("critic_steps", isinstance(self.critic_steps, int) and self.critic_steps >= 1,
               self.critic_steps, "an integer >= 1")
        _check("critic_width", isinstance(self.critic_width, int) and self.critic_width >= 1,
               self.critic_width, "an integer >= 1")
        _check("critic_depth", isinstance(self.critic_depth, int) and self.critic_depth >= 1,
               self.critic_depth, "an integer >= 1")
        _check("critic_lr", self.critic_lr > 0, self.critic_lr, "> 0")
        _check("init_log_scale", -10 <= self.init_log_scale <= 3, self.init_log_scale, "between -10 and 3")


@dataclass(frozen=True)
class FlowConfig:
    """Flow matching baseline: v(x_t, t) regressed on x1 - x0, sampled with Euler steps."""

    data: Bimodal = Bimodal()
    schedule: Schedule = Schedule()
    euler_steps: int = 50

    def __post_init__(self):
        _check("euler_steps", isinstance(self.euler_steps, int) and self.euler_steps >= 1,
               self.euler_steps, "an integer >= 1")


@dataclass
class Run:
    """The outcome of one training run.

    ``frames[name]`` has shape (len(steps), n_show, k); ``final[name]`` has shape (n_eval, k);
    ``history[name]`` holds one float per training step; ``state[name]`` is a module state dict.
    """

    method: str
    config: dict
    steps: list[int]
    frames: dict[str, torch.Tensor]
    final: dict[str, torch.Tensor]
    history: dict[str, list[float]]
    state: dict[str, dict]
    seconds: float
    device: str
    cached: bool = False


# ---------------------------------------------------------------------------------------------
# the shared loop

class _Progress:
    """A tqdm bar when run interactively; one summary line per run under the book build."""

    def __init__(self, label: str, total: int):
        self.label, self.total = label, total
        self.line_mode = os.environ.get("CHARTLIB_PROGRESS", "bar") != "bar"
        self.bar = None
        if not self.line_mode:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, desc=label, leave=False)

    def update(self, loss: float):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    def close(self, seconds: float):
        if self.bar is not None:
            self.bar.close()
        print(f"trained {self.label}: {self.total} steps in {seconds:.1f} s")


def _loop(label: str, cfg, modules: dict[str, nn.Module], step: Callable[[int], dict[str, torch.Tensor]],
          record: Callable[[int], dict[str, torch.Tensor]], device: torch.device, method: str) -> Run:
    sched: Schedule = cfg.schedule
    params = [p for m in modules.values() for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=sched.lr)
    snap_at = sched.snapshot_steps()
    frames: dict[str, list[torch.Tensor]] = {}
    history: dict[str, list[float]] = {}
    progress = _Progress(label, sched.steps)
    start = time.perf_counter()

    def snapshot():
        with torch.no_grad():
            for k, v in record(sched.n_show).items():
                frames.setdefault(k, []).append(v.detach().float().cpu())

    for it in range(sched.steps + 1):
        if it in snap_at:
            snapshot()
        if it == sched.steps:
            break
        losses = step(it)
        total = losses["loss"]
        if not torch.isfinite(total):
            raise TrainingDiverged(
                f"{label}: loss became {total.item()} at step {it}; nothing was cached. "
                f"Lower lr (now {sched.lr}) or check the data and temperatures.")
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        for k, v in losses.items():
            history.setdefault(k, []).append(float(v.detach()))
        if any(not torch.isfinite(p).all() for p in params):
            raise TrainingDiverged(f"{label}: a parameter became non-finite at step {it}; nothing was cached.")
        progress.update(history["loss"][-1])
    with torch.no_grad():
        final = {k: v.detach().float().cpu() for k, v in record(sched.n_eval).items()}
    seconds = time.perf_counter() - start
    progress.close(seconds)
    return Run(method=method, config=asdict(cfg), steps=snap_at,
               frames={k: torch.stack(v) for k, v in frames.items()}, final=final, history=history,
               state={k: {n: t.detach().cpu() for n, t in m.state_dict().items()} for k, m in modules.items()},
               seconds=seconds, device=str(device))


def _setup(cfg, device):
    device = pick_device() if device is None else torch.device(device)
    torch.manual_seed(cfg.schedule.seed)
    gen = seeded(cfg.schedule.seed)
    # fixed inputs for the frames, so the slider shows the same points moving
    show_gen = seeded(10_000 + cfg.schedule.seed)
    return device, gen, show_gen


# ---------------------------------------------------------------------------------------------
# the three methods

def build_generator(cfg: DriftConfig) -> nn.Module:
    s = cfg.schedule
    return Shifted(mlp(cfg.noise_dim, cfg.data.dim, s.width, s.depth), torch.tensor(cfg.init_offset))


def train_drift(cfg: DriftConfig, device=None) -> Run:
    """Plain drifting: movers are generator samples, positives data, negatives the samples."""
    device, gen, show_gen = _setup(cfg, device)
    s = cfg.schedule
    net = build_generator(cfg).to(device)
    show_eps = {n: torch.randn(n, cfg.noise_dim, generator=show_gen).to(device) for n in (s.n_show, s.n_eval)}

    def step(it):
        x = net(torch.randn(s.batch, cfg.noise_dim, generator=gen).to(device))
        y = cfg.data.sample(s.batch, gen).to(device)
        v = drift_field(x, y, None, cfg.temperatures, cfg.scale_free)
        return {"loss": drift_loss(x, v)}

    return _loop(f"drift seed {s.seed}", cfg, {"generator": net}, step,
                 lambda n: {"samples": net(show_eps[n])}, device, "drift")


def build_chart(cfg: ChartConfig) -> tuple[nn.Module, nn.Module]:
    s, d = cfg.schedule, cfg.latent_dim
    enc = mlp(cfg.data.dim, d, s.width, s.depth)
    if cfg.latent_offset is not None:
        enc = Shifted(enc, torch.tensor(cfg.latent_offset))
    dec = mlp(d, cfg.data.dim, s.width, s.depth)
    return enc, dec


def train_chart(cfg: ChartConfig, device=None) -> Run:
    """Chart transport: recon |Dec(E(x)) - x|^2 + lambda * drift loss on u = E(x) towards N(0, I)."""
    device, gen, show_gen = _setup(cfg, device)
    s, d = cfg.schedule, cfg.latent_dim
    enc, dec = (m.to(device) for m in build_chart(cfg))
    show = {n: (cfg.data.sample(n, show_gen).to(device), torch.randn(n, d, generator=show_gen).to(device))
            for n in (s.n_show, s.n_eval)}

    def step(it):
        x = cfg.data.sample(s.batch, gen).to(device)
        u = enc(x)
        recon = (dec(u.detach() if cfg.detach_recon else u) - x).pow(2).sum(dim=1).mean()
        z = torch.randn(s.batch, d, generator=gen).to(device)
        drift = drift_loss(u, drift_field(u, z, None, cfg.temperatures, cfg.scale_free))
        return {"loss": recon + cfg.drift_weight * drift, "recon": recon, "drift": drift}

    def record(n):
        x, z = show[n]
        u = enc(x)
        return {"data": x, "latents": u, "recon": dec(u), "prior": z, "samples": dec(z)}

    return _loop(f"chart seed {s.seed}", cfg, {"encoder": enc, "decoder": dec}, step, record, device, "chart")


class StochasticEncoder(nn.Module):
    """x (n, D) -> (mean (n, d), log-scale (n, d)); the log-scale starts near ``init_log_scale``."""

    def __init__(self, d_in: int, d: int, width: int, depth: int, init_log_scale: float,
                 offset: tuple[float, ...] | None = None):
        super().__init__()
        self.d = d
        self.net = mlp(d_in, 2 * d, width, depth)
        self.register_buffer("init_log_scale", torch.tensor(float(init_log_scale)))
        self.register_buffer("offset", torch.zeros(d) if offset is None else torch.tensor(offset).float())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        return out[:, :self.d] + self.offset, out[:, self.d:] + self.init_log_scale


def build_stochastic_chart(cfg: StochasticChartConfig) -> tuple[StochasticEncoder, nn.Module, nn.Module]:
    """Encoder (mean, log-scale), decoder and latent score critic for a stochastic chart."""
    s, d = cfg.schedule, cfg.latent_dim
    enc = StochasticEncoder(cfg.data.dim, d, s.width, s.depth, cfg.init_log_scale, cfg.latent_offset)
    dec = mlp(d, cfg.data.dim, s.width, s.depth)
    critic = mlp(d, d, cfg.critic_width, cfg.critic_depth)
    return enc, dec, critic


def dsm_loss(critic: nn.Module, z: torch.Tensor, noise: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Denoising score matching at noise level ``noise`` on samples z (n, d).

    With z~ = z + noise * e, e ~ N(0, I), returns mean |noise * critic(z~) + e|^2, minimised when
    critic is the score of the samples' law smoothed by N(0, noise^2 I).
    """
    e = torch.randn(z.shape, generator=generator).to(z.device)
    return (noise * critic(z + noise * e) + e).pow(2).sum(dim=1).mean()


def critic_field(critic: nn.Module, z: torch.Tensor, noise: float) -> torch.Tensor:
    """V(z) = score of N(0, I) smoothed at ``noise`` minus the critic: -z / (1 + noise^2) - s(z), (n, d).

    Computed without gradients.
    """
    with torch.no_grad():
        return -z / (1 + noise ** 2) - critic(z)


def train_stochastic_chart(cfg: StochasticChartConfig, device=None) -> Run:
    """Stochastic chart transport: recon |Dec(z) - x|^2 with z = mu(x) + sigma(x) * eps
    (reparameterised) + lambda * drift loss on z, the field from the kernel or the score critic.

    History adds ``sigma`` (mean sigma over batch and latent dims) and, for the critic, ``critic``
    (its DSM loss).  Frames add ``mu`` and ``sigma`` (n, d); ``latents`` are fiber samples and
    ``recon`` decodes them.
    """
    device, gen, show_gen = _setup(cfg, device)
    s, d = cfg.schedule, cfg.latent_dim
    enc, dec, critic = (m.to(device) for m in build_stochastic_chart(cfg))
    critic_opt = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr)
    show = {n: (cfg.data.sample(n, show_gen).to(device), torch.randn(n, d, generator=show_gen).to(device),
                torch.randn(n, d, generator=show_gen).to(device)) for n in (s.n_show, s.n_eval)}

    def step(it):
        x = cfg.data.sample(s.batch, gen).to(device)
        mu, log_sigma = enc(x)
        sigma = log_sigma.exp()
        z = mu + sigma * torch.randn(s.batch, d, generator=gen).to(device)
        recon = (dec(z.detach() if cfg.detach_recon else z) - x).pow(2).sum(dim=1).mean()
        out = {}
        if cfg.field == "kernel":
            prior = torch.randn(s.batch, d, generator=gen).to(device)
            v = drift_field(z, prior, None, cfg.temperatures, cfg.scale_free)
        else:
            for _ in range(cfg.critic_steps):
                critic_loss = dsm_loss(critic, z.detach(), cfg.critic_noise, gen)
                critic_opt.zero_grad(set_to_none=True)
                critic_loss.backward()
                critic_opt.step()
            out["critic"] = critic_loss.detach()
            v = critic_field(critic, z.detach(), cfg.critic_noise)
        drift = drift_loss(z, v)
        return {"loss": recon + cfg.drift_weight * drift, "recon": recon, "drift": drift,
                "sigma": sigma.detach().mean(), **out}

    def record(n):
        x, eps, prior = show[n]
        mu, log_sigma = enc(x)
        z = mu + log_sigma.exp() * eps
        return {"data": x, "latents": z, "mu": mu, "sigma": log_sigma.exp(), "recon": dec(z),
                "prior": prior, "samples": dec(prior)}

    modules = {"encoder": enc, "decoder": dec}
    if cfg.field == "critic":
        # the critic has its own optimiser; _loop's never sees a gradient for it, so leaves it alone
        modules["critic"] = critic
    return _loop(f"stochastic chart ({cfg.field}) seed {s.seed}", cfg, modules, step, record, device, "stochastic")


def euler_sample(net: TimeMLP, x0: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Integrate dx/dt = v(x, t) from t=0 to 1 with ``n_steps`` Euler steps: (n, d) -> (n, d)."""
    x, dt = x0, 1.0 / n_steps
    for i in range(n_steps):
        t = torch.full((x.shape[0],), i * dt, device=x.device)
        x = x + dt * net(x, t)
    return x


def train_flow(cfg: FlowConfig, device=None) -> Run:
    """Flow matching: regress v(x_t, t) on x1 - x0 along x_t = (1 - t) x0 + t x1, x0 ~ N(0, I)."""
    device, gen, show_gen = _setup(cfg, device)
    s, dim = cfg.schedule, cfg.data.dim
    net = TimeMLP(dim, s.width, s.depth).to(device)
    show_x0 = {n: torch.randn(n, dim, generator=show_gen).to(device) for n in (s.n_show, s.n_eval)}

    def step(it):
        x1 = cfg.data.sample(s.batch, gen).to(device)
        x0 = torch.randn(s.batch, dim, generator=gen).to(device)
        t = torch.rand(s.batch, generator=gen).to(device)
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1
        return {"loss": (net(xt, t) - (x1 - x0)).pow(2).sum(dim=1).mean()}

    return _loop(f"flow seed {s.seed}", cfg, {"velocity": net}, step,
                 lambda n: {"samples": euler_sample(net, show_x0[n], cfg.euler_steps)}, device, "flow")


TRAINERS: dict[str, Callable] = {"drift": train_drift, "chart": train_chart, "flow": train_flow,
                                 "stochastic": train_stochastic_chart}
CONFIGS = {DriftConfig: "drift", ChartConfig: "chart", FlowConfig: "flow", StochasticChartConfig: "stochastic"}
