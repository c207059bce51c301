"""Benchmark 6: several seeds' generator networks trained as one stacked computation against one
after another, the question behind batching the toy chapters' seeds.

Each seed's network is chapter 1's generator (``chartlib.core.methods.build_generator``, initialised as
a run of that seed initialises it).  "separate": for every seed a forward pass on its own batch, a
backward pass and its own Adam step, as ``chartlib.core.training`` trains one run.  "stacked": the same
networks' parameters stacked along a leading seed axis (``torch.func.stack_module_state``), one
``vmap``-ed forward pass over all seeds, one backward pass of the summed losses and one Adam step
over the stacked parameters (Adam acts per element, so each seed's update is its own).  Only the
network part of a step is timed: a drift run's field and batches would still be drawn per seed.
"""
from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch.func import functional_call, stack_module_state, vmap

from chartlib.chapters.mode_collapse import PROFILES as MODE_COLLAPSE_PROFILES
from chartlib.core.methods import build_generator

from .common import median_time

CHECK_STEPS = 3       # steps after which the two ways' parameters are compared


def _config(quick: bool):
    s = MODE_COLLAPSE_PROFILES["full"]
    cfg = s.arms()["small_tau"].configs[0]
    return replace(cfg, schedule=replace(cfg.schedule, width=32, batch=32)) if quick else cfg


def _networks(cfg, seeds: int, device: torch.device) -> list[torch.nn.Module]:
    nets = []
    for seed in range(seeds):
        torch.manual_seed(seed)                       # as chartlib.core.methods seeds a run's networks
        nets.append(build_generator(cfg).to(device))
    return nets


def separate_step(nets: list[torch.nn.Module], noise: torch.Tensor):
    """One training step per network, one after another: noise (seeds, batch, k)."""
    opts = [torch.optim.Adam(net.parameters(), lr=1e-3) for net in nets]

    def step():
        for net, opt, z in zip(nets, opts, noise):
            loss = net(z).pow(2).sum(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return step


def stacked_step(nets: list[torch.nn.Module], noise: torch.Tensor):
    """One step of all networks at once; returns (step, the stacked parameters by name)."""
    params, buffers = stack_module_state(nets)        # copies: (seeds, ...) leaves
    template = copy.deepcopy(nets[0]).to("meta")
    forward = vmap(lambda p, b, z: functional_call(template, (p, b), (z,)))
    opt = torch.optim.Adam(params.values(), lr=1e-3)

    def step():
        loss = forward(params, buffers, noise).pow(2).sum(dim=2).mean(dim=1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step, params


def run_stacked(device: torch.device, quick: bool, repeats: int) -> dict:
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)                      # as the toy chapters train (chartlib.runs.workers)
    try:
        return _measure(device, quick, repeats)
    finally:
        torch.set_num_threads(threads)


def _measure(device: torch.device, quick: bool, repeats: int) -> dict:
    cfg, rows = _config(quick), []
    batch, k = cfg.schedule.batch, cfg.noise_dim
    for seeds in (1, 3) if quick else (1, 3, 5, 10):
        nets = _networks(cfg, seeds, device)
        noise = torch.randn(seeds, batch, k, generator=torch.Generator().manual_seed(0)).to(device)
        stacked, params = stacked_step(nets, noise)   # stacks copies of the fresh networks
        separate = separate_step(nets, noise)
        for _ in range(CHECK_STEPS):
            stacked()
            separate()
        diff = max((params[name][i] - p).abs().max().item()
                   for i, net in enumerate(nets) for name, p in net.named_parameters())
        t_sep = median_time(separate, device, repeats * 20)[0]
        t_stk = median_time(stacked, device, repeats * 20)[0]
        rows.append({"seeds": seeds, "batch": batch,
                     "parameters_per_network": sum(p.numel() for p in nets[0].parameters()),
                     "separate_seconds": t_sep, "stacked_seconds": t_stk, "separate_over_stacked": t_sep / t_stk,
                     "max_abs_parameter_difference": diff})
    return {"settings": {"torch_threads": torch.get_num_threads(),
                         "network": "chapter 1's generator (width 128, depth 3; quick: width 32, batch 32)",
                         "step": "forward, squared-output loss, backward, Adam; network part only",
                         "check": f"parameters of the two ways compared after {CHECK_STEPS} steps from the same start"},
            "cases": rows}
