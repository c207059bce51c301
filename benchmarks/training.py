"""Benchmarks 2 and 3: one training step per method, split into its parts, and sampling throughput.

The parts repeat what the trainers in ``chartlib.methods`` do in one step, with the same shapes:
batch B, data dimension D, latent dimension d.  The whole step is timed by running the real
trainer for a few steps.
"""
from __future__ import annotations

import contextlib
import io
import statistics
from dataclasses import dataclass, replace

import torch

from chartlib.data import seeded
from chartlib.drift import drift_field, drift_loss
from chartlib.experiments import (CHART_TRANSPORT_PROFILES, MODE_COLLAPSE_PROFILES, SURFACE_PROFILES,
                                  sampling_rate)
from chartlib.experiments_mnist import MNIST_PROFILES, TIMING_SAMPLES
from chartlib.methods import (CONFIGS, TRAINERS, FlowConfig, build_chart, build_generator, build_stochastic_chart,
                              critic_field, dsm_loss, euler_sample)
from chartlib.mnist import RAW_FILES, raw_folder
from chartlib.nets import TimeMLP

from .common import matmul_rate, median_time

FLOP_FORMULA = "6 * parameters * batch (forward 2 P B, backward 4 P B), networks trained by the main optimiser"


@dataclass(frozen=True)
class Synthetic784:
    """Stand-in for MNIST digits: uniform [0, 1) pixels, sample(n) -> (n, 784)."""

    @property
    def dim(self) -> int:
        return 784

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.rand(n, 784, generator=generator)


def _mnist_on_disk() -> bool:
    return all((raw_folder() / f).is_file() for f in RAW_FILES)


def cases(quick: bool) -> tuple[dict, str]:
    """The chapters' full-profile configs by name (``quick``: batch 32, width 32), and the MNIST data used."""
    mc, ct, sf, mn = (p["full"] for p in (MODE_COLLAPSE_PROFILES, CHART_TRANSPORT_PROFILES, SURFACE_PROFILES,
                                          MNIST_PROFILES))
    d = mn.latent_dims[0]
    out = {"drift, 2-D (ch. 1)": mc.drift_config(0, (mc.temperature,)),
           "chart, 2-D (ch. 2)": ct.chart_config(0),
           "flow matching, 2-D (ch. 2)": FlowConfig(data=ct.data, euler_steps=ct.euler_steps, schedule=ct.schedule(0)),
           "stochastic chart, 3-D, critic field (ch. 4)": sf.stochastic(0, "critic"),
           f"chart, 784-D, {d}-D latent (ch. 5)": mn.chart_config(d, "deterministic"),
           "flow matching, 784-D (ch. 5)": mn.flow_config()}
    real = not quick and _mnist_on_disk()
    for name, cfg in out.items():
        if cfg.data.dim == 784 and not real:
            out[name] = cfg = replace(cfg, data=Synthetic784())
        if quick:
            out[name] = replace(cfg, schedule=replace(cfg.schedule, batch=32, width=32))
    data = ("real MNIST digits (MnistDigits)" if real else
            "synthetic uniform [0, 1) pixels of shape (B, 784): " + ("quick run" if quick else "MNIST not on disk"))
    return out, data


def parts(cfg, device):
    """(sample, network, field, network parameters) for one step of ``cfg``'s trainer.

    sample() draws the batch (data (B, D) and noise); network() does the forward pass, the loss with
    the field held fixed, backward and the Adam step; field() computes the field (None for flow
    matching), for the stochastic chart with the critic including its ``critic_steps`` updates.
    """
    kind, s, gen = CONFIGS[type(cfg)], cfg.schedule, seeded(0)
    B, b = s.batch, {}

    def noise(*shape):
        return torch.randn(*shape, generator=gen).to(device)

    def data():
        return cfg.data.sample(B, gen).to(device)

    field = None
    if kind == "drift":
        nets = [build_generator(cfg).to(device)]
        sample = lambda: b.update(eps=noise(B, cfg.noise_dim), y=data())  # noqa: E731
        forward = lambda: nets[0](b["eps"])  # noqa: E731
        loss = drift_loss
        field = lambda u: drift_field(u, b["y"], None, cfg.temperatures, cfg.scale_free)  # noqa: E731
    elif kind == "flow":
        nets = [TimeMLP(cfg.data.dim, s.width, s.depth).to(device)]
        sample = lambda: b.update(x1=data(), x0=noise(B, cfg.data.dim), t=torch.rand(B, generator=gen).to(device))  # noqa: E731
        forward = lambda: nets[0]((1 - b["t"][:, None]) * b["x0"] + b["t"][:, None] * b["x1"], b["t"])  # noqa: E731
        loss = lambda out, v: (out - (b["x1"] - b["x0"])).pow(2).sum(dim=1).mean()  # noqa: E731
    else:
        d = cfg.latent_dim
        if kind == "chart":
            enc, dec = build_chart(cfg)
            sample = lambda: b.update(x=data(), z=noise(B, d))  # noqa: E731
            forward = lambda: enc(b["x"])  # noqa: E731
        else:
            enc, dec, critic = build_stochastic_chart(cfg)
            critic = critic.to(device)
            critic_opt = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr)
            prior = cfg.field == "kernel"
            sample = lambda: b.update(x=data(), eps=noise(B, d), **({"z": noise(B, d)} if prior else {}))  # noqa: E731

            def forward():
                mu, log_sigma = enc(b["x"])
                return mu + log_sigma.exp() * b["eps"]
        nets = [enc.to(device), dec.to(device)]
        loss = lambda u, v: (dec(u) - b["x"]).pow(2).sum(dim=1).mean() + cfg.drift_weight * drift_loss(u, v)  # noqa: E731
        field = lambda u: drift_field(u, b["z"], None, cfg.temperatures, cfg.scale_free)  # noqa: E731
        if kind == "stochastic" and cfg.field == "critic":
            def field(u):
                for _ in range(cfg.critic_steps):
                    critic_loss = dsm_loss(critic, u, cfg.critic_noise, gen)
                    critic_opt.zero_grad(set_to_none=True)
                    critic_loss.backward()
                    critic_opt.step()
                return critic_field(critic, u, cfg.critic_noise)
    opt = torch.optim.Adam([p for m in nets for p in m.parameters()], lr=s.lr)
    sample()
    with torch.no_grad():
        u0 = forward()
    v = field(u0) if field else None

    def network():
        total = loss(forward(), v)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    return sample, network, (lambda: field(u0)) if field else None, sum(p.numel() for m in nets for p in m.parameters())


def whole_step(cfg, device, steps: int) -> float:
    """Seconds per step of the real trainer over ``steps`` steps.  Its loop also records 2 frames and
    a final sample of 2 points, counted in (flow matching draws them with 1 Euler step, not 50)."""
    short = replace(cfg, schedule=replace(cfg.schedule, steps=steps, n_snapshots=2, n_show=2, n_eval=2))
    if isinstance(cfg, FlowConfig):
        short = replace(short, euler_steps=1)
    with contextlib.redirect_stdout(io.StringIO()):
        run = TRAINERS[CONFIGS[type(cfg)]](short, device)
    return run.seconds / steps


def run_training(device: torch.device, quick: bool, repeats: int) -> dict:
    configs, data = cases(quick)
    ref_size = 256 if quick else 1024
    ref = matmul_rate(ref_size, device, repeats)
    rows = []
    for name, cfg in configs.items():
        sample, network, field, params = parts(cfg, device)
        s = cfg.schedule
        steps = 3 if quick else 20
        whole_step(cfg, device, steps)                                     # warm-up
        sec = {"whole_step": statistics.median(whole_step(cfg, device, steps) for _ in range(repeats))}
        sec["sampling"] = median_time(sample, device, repeats * 20)[0]
        sec["network"] = median_time(network, device, repeats * 20)[0]
        sec["field"] = median_time(field, device, repeats * 20)[0] if field else 0.0
        sec["sum_of_parts"] = sec["sampling"] + sec["network"] + sec["field"]
        flops = 6 * params * s.batch
        rows.append({"case": name, "method": CONFIGS[type(cfg)], "batch": s.batch, "width": s.width,
                     "depth": s.depth, "data_dim": cfg.data.dim, "latent_dim": getattr(cfg, "latent_dim", None),
                     "temperatures": getattr(cfg, "temperatures", None), "scale_free": getattr(cfg, "scale_free", None),
                     "field": getattr(cfg, "field", None if CONFIGS[type(cfg)] == "flow" else "kernel"),
                     "network_parameters": params, "seconds": sec, "network_flops": flops,
                     "network_gflops_per_s": flops / sec["network"] / 1e9,
                     "fraction_of_matmul": flops / sec["network"] / 1e9 / ref})
    return {"settings": {"flops": FLOP_FORMULA, "mnist_data": data,
                         "whole_step": f"the real trainer run for {3 if quick else 20} steps: seconds / steps, median over {repeats} runs",
                         "parts": f"median over up to {repeats * 20} calls each, same shapes as the trainer",
                         "matmul_reference": f"float32 {ref_size} x {ref_size} matmul, {ref:.1f} GFLOP/s"},
            "matmul_gflops_per_s": ref, "cases": rows}


def run_sampling(device: torch.device, quick: bool, repeats: int) -> dict:
    """Samples per second: a chart's decoder (one call) vs flow matching (``euler_steps`` Euler
    steps of the velocity net), untrained networks of the chapters' architectures."""
    ct, mn = CHART_TRANSPORT_PROFILES["full"], MNIST_PROFILES["full"]
    chart2 = ct.chart_config(0)
    sizes = {"2-D (ch. 2)": (chart2, ct.euler_steps, 2000),
             f"784-D, {mn.latent_dims[0]}-D latent (ch. 5)": (mn.chart_config(mn.latent_dims[0], "deterministic"),
                                                             mn.euler_steps, TIMING_SAMPLES)}
    rows = []
    for name, (cfg, euler, n) in sizes.items():
        if quick:
            cfg, n = replace(cfg, schedule=replace(cfg.schedule, width=32)), 100
        s, D, d = cfg.schedule, cfg.data.dim, cfg.latent_dim
        dec = build_chart(cfg)[1].to(device).eval()
        vel = TimeMLP(D, s.width, s.depth).to(device).eval()
        chart = sampling_rate(lambda k: dec(torch.randn(k, d, device=device)), n, repeats, device)
        flow = sampling_rate(lambda k: euler_sample(vel, torch.randn(k, D, device=device), euler), n, repeats, device)
        rows.append({"case": name, "samples_per_call": n, "width": s.width, "depth": s.depth, "euler_steps": euler,
                     "chart_samples_per_s": chart, "flow_samples_per_s": flow, "ratio_chart_over_flow": chart / flow})
    return {"settings": {"networks": "untrained, the chapters' architectures (throughput does not depend on the weights)",
                         "rate": f"median over {repeats} calls after one warm-up"}, "cases": rows}
