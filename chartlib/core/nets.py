"""Networks: plain MLPs, a time-conditioned MLP for flow matching, and the device choice."""
from __future__ import annotations

import torch
from torch import nn


def pick_device(prefer: str = "auto") -> torch.device:
    """CUDA if available, then Apple MPS, then CPU (``prefer`` may force one of them).

    Forcing a device this machine does not have ("cuda" without a visible CUDA GPU, "mps" without
    Apple's Metal backend) is refused here, naming the parameter, instead of failing later inside
    training with torch's driver error.
    """
    if prefer not in ("auto", "cuda", "mps", "cpu"):
        raise ValueError(f"device must be one of auto, cuda, mps, cpu; got {prefer!r}")
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if prefer == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' is not available: no CUDA GPU is visible to torch on this machine; "
                         "use device='auto' (picks the best device present) or device='cpu'")
    if prefer == "mps" and not has_mps:
        raise ValueError("device='mps' is not available: Apple's MPS (Metal) backend is not available "
                         "on this machine; use device='auto' (picks the best device present) or device='cpu'")
    if prefer == "auto":
        prefer = "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    return torch.device(prefer)


def mlp(d_in: int, d_out: int, width: int, depth: int) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` SiLU units: (batch, d_in) -> (batch, d_out)."""
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.SiLU()]
        d = width
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


class Shifted(nn.Module):
    """Wraps a network and adds a fixed offset to its output: (batch, *) -> (batch, d_out).

    Used to start a generator (or an encoder) away from where a fresh network puts its outputs.
    """

    def __init__(self, net: nn.Module, offset: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("offset", offset.clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + self.offset


class TimeMLP(nn.Module):
    """Velocity field v(x, t) for flow matching: x (batch, d), t (batch,) -> (batch, d).

    Time enters as a few sinusoidal features concatenated to x.
    """

    def __init__(self, d: int, width: int, depth: int, n_freq: int = 8):
        super().__init__()
        self.register_buffer("freqs", torch.pi * 2.0 ** torch.arange(n_freq).float() / 2 ** (n_freq // 2))
        self.net = mlp(d + 2 * n_freq + 1, d, width, depth)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        angles = t[:, None] * self.freqs[None, :]
        return self.net(torch.cat([x, t[:, None], angles.sin(), angles.cos()], dim=1))
