"""Benchmarks 2 and 3: one training step per method, split into its parts, and sampling throughput.

Every part calls the method's own code (``chartlib.core.methods.method_for(cfg).step`` and its field):
nothing is re-implemented here.  The whole step is also timed by running the real trainer for a
few steps.
"""
from __future__ import annotations

import contextlib
import io
import statistics
from dataclasses import dataclass, replace

import torch

from chartlib.chapters.chart_transport import PROFILES as CHART_TRANSPORT_PROFILES
from chartlib.chapters.mnist import PROFILES as MNIST_PROFILES
from chartlib.chapters.mnist import TIMING_SAMPLES
from chartlib.chapters.mode_collapse import PROFILES as MODE_COLLAPSE_PROFILES
from chartlib.chapters.surface import PROFILES as SURFACE_PROFILES
from chartlib.core.data import seeded
from chartlib.core.methods import METHODS, FlowConfig, PlainDrift, euler_sample, method_for, train_run
from chartlib.datasets.mnist_files import RAW_FILES, raw_folder
from chartlib.measure.scores import sampling_rate

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
    out = {"drift, 2-D (ch. 1)": mc.arms()["small_tau"].configs[0],
           "chart, 2-D (ch. 2)": ct.chart_config(0),
           "flow matching, 2-D (ch. 2)": ct.flow_config(0),
           "stochastic chart, 3-D, critic field (ch. 4)": sf.arms(stochastic=True)["critic"].configs[0],
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


class _FixedField:
    """Stands in for a method's field with a velocity computed once, so that timing the method's
    own step without its field leaves the data, the networks and the optimiser."""

    def __init__(self, v: torch.Tensor):
        self.v = v

    def velocity(self, movers, target, generator):
        return self.v

    def stats(self):
        return {}


def parts(cfg, device):
    """Timed closures for one training step of ``cfg``'s method, all calling the method's own code
    (``chartlib.core.methods``): step() = the whole step (its ``step``, backward, Adam); sample() = one
    batch of data; network() = the step with the field replaced by a fixed velocity; field() = the
    field alone at fixed movers (for the critic including its updates), None for flow matching.
    Also returns the number of parameters the main optimiser trains."""
    method = method_for(cfg, device)
    opt = torch.optim.Adam([p for m in method.trained for p in m.parameters()], lr=cfg.schedule.lr)
    gen = seeded(0, method.device)                # batches are drawn on the run's device, as in training

    def optimised(step):
        def run():
            loss = step(0)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return run

    whole = optimised(method.step)

    def sample():
        return cfg.data.sample(cfg.schedule.batch, gen).to(method.device)

    field = None
    if hasattr(method, "field"):
        with torch.no_grad():
            if isinstance(method, PlainDrift):
                u0 = method.net(torch.randn(cfg.schedule.batch, cfg.noise_dim, generator=gen, device=method.device))
                target = cfg.data
            else:
                u0 = method.enc(sample(), method.enc.draw_noise(cfg.schedule.batch, gen))[0]
                target = method.prior
        real = method.field

        def field():
            return real.velocity(u0, target, gen)

        fixed = _FixedField(field())

        def fixed_step(it):
            method.field = fixed
            try:
                return method.step(it)
            finally:
                method.field = real

        network = optimised(fixed_step)
    else:
        network = whole
    return whole, sample, network, field, sum(p.numel() for m in method.trained for p in m.parameters())


def whole_step(cfg, device, steps: int) -> float:
    """Seconds per step of the real trainer over ``steps`` steps.  Its loop also records 2 frames and
    a final sample of 2 points, counted in (flow matching draws them with 1 Euler step, not 50)."""
    short = replace(cfg, schedule=replace(cfg.schedule, steps=steps, n_snapshots=2, n_show=2, n_eval=2))
    if isinstance(cfg, FlowConfig):
        short = replace(short, euler_steps=1)
    with contextlib.redirect_stdout(io.StringIO()):
        run = train_run(short, device)
    return run.seconds / steps


def run_training(device: torch.device, quick: bool, repeats: int) -> dict:
    configs, data = cases(quick)
    ref_size = 256 if quick else 1024
    ref = matmul_rate(ref_size, device, repeats)
    rows = []
    for name, cfg in configs.items():
        step, sample, network, field, params = parts(cfg, device)
        s = cfg.schedule
        steps = 3 if quick else 20
        whole_step(cfg, device, steps)                                     # warm-up
        sec = {"whole_step": statistics.median(whole_step(cfg, device, steps) for _ in range(repeats))}
        sec["step"] = median_time(step, device, repeats * 20)[0]
        sec["sampling"] = median_time(sample, device, repeats * 20)[0]
        sec["network"] = max(median_time(network, device, repeats * 20)[0] - sec["sampling"], 1e-9)
        sec["field"] = median_time(field, device, repeats * 20)[0] if field else 0.0
        sec["sum_of_parts"] = sec["sampling"] + sec["network"] + sec["field"]
        flops = 6 * params * s.batch
        rows.append({"case": name, "method": METHODS[type(cfg)].name, "batch": s.batch, "width": s.width,
                     "depth": s.depth, "data_dim": cfg.data.dim, "latent_dim": getattr(cfg, "latent_dim", None),
                     "encoder": type(getattr(cfg, "encoder", None)).__name__ if hasattr(cfg, "encoder") else None,
                     "field": repr(getattr(cfg, "field", None)),
                     "network_parameters": params, "seconds": sec, "network_flops": flops,
                     "network_gflops_per_s": flops / sec["network"] / 1e9,
                     "fraction_of_matmul": flops / sec["network"] / 1e9 / ref})
    return {"settings": {"flops": FLOP_FORMULA, "mnist_data": data,
                         "whole_step": f"the real trainer run for {3 if quick else 20} steps: seconds / steps, "
                                       f"median over {repeats} runs",
                         "parts": f"median over up to {repeats * 20} calls each of the method's own step "
                                  "(chartlib.core.methods): step = step + backward + Adam; network = the step with its "
                                  "field fixed, minus sampling",
                         "matmul_reference": f"float32 {ref_size} x {ref_size} matmul, {ref:.1f} GFLOP/s"},
            "matmul_gflops_per_s": ref, "cases": rows}


def _chart_sampler(dec, latent_dim: int, device):
    """k samples of a chart: its decoder at k prior draws."""
    def sample(k):
        return dec(torch.randn(k, latent_dim, device=device))
    return sample


def _flow_sampler(vel, dim: int, euler_steps: int, device):
    """k samples of flow matching: ``euler_steps`` Euler steps of its velocity net from k prior draws."""
    def sample(k):
        return euler_sample(vel, torch.randn(k, dim, device=device), euler_steps)
    return sample


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
        if cfg.data.dim == 784:      # untrained networks: the digits themselves are not needed
            cfg = replace(cfg, data=Synthetic784())
        s, D, d = cfg.schedule, cfg.data.dim, cfg.latent_dim
        dec = method_for(cfg, device).dec.eval()
        vel = method_for(FlowConfig(data=cfg.data, schedule=cfg.schedule), device).net.eval()
        chart = sampling_rate(_chart_sampler(dec, d, device), n, repeats, device)
        flow = sampling_rate(_flow_sampler(vel, D, euler, device), n, repeats, device)
        rows.append({"case": name, "samples_per_call": n, "width": s.width, "depth": s.depth, "euler_steps": euler,
                     "chart_samples_per_s": chart, "flow_samples_per_s": flow, "ratio_chart_over_flow": chart / flow})
    return {"settings": {"networks": "untrained, the chapters' architectures (throughput does not depend on the "
                                     "weights)",
                         "rate": f"median over {repeats} calls after one warm-up"}, "cases": rows}
