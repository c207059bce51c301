"""Toy data sets, generated from a seed.

Every data set's ``sample(n, generator)`` makes its tensors on the generator's device (CPU without
a generator), so a run whose generator lives on the GPU draws its batches there.  On the CPU the
numbers are the same as drawing on the CPU always was; a CUDA generator gives a different stream of
numbers from a CPU one with the same seed (each device has its own generator algorithm).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Bimodal:
    """Two isotropic Gaussians in 2-D with equal weight, centred at (-separation/2, 0) and
    (+separation/2, 0), each with standard deviation ``spread``."""

    separation: float = 4.0
    spread: float = 0.3

    def __post_init__(self):
        if not self.separation > 0:
            raise ValueError(f"separation must be > 0, got {self.separation}")
        if not self.spread > 0:
            raise ValueError(f"spread must be > 0, got {self.spread}")

    @property
    def dim(self) -> int:
        return 2

    @property
    def modes(self) -> torch.Tensor:
        """Mode centres, shape (2, 2)."""
        h = self.separation / 2
        return torch.tensor([[-h, 0.0], [h, 0.0]])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n points, shape (n, 2); the two modes alternate so every batch is balanced."""
        device = generator_device(generator)
        which = torch.arange(n, device=device) % 2
        noise = torch.randn(n, 2, generator=generator, device=device)
        return self.modes.to(device)[which] + self.spread * noise


@dataclass(frozen=True)
class SurfaceMixture:
    """Gaussian blobs drawn in (u, v) and lifted onto the sheet z = amplitude * sin(frequency * u).

    The data are exactly 2-D (every point lies on the surface) inside 3-D.  The ``n_components``
    blob centres sit in the (u, v) plane on a ``"ring"`` of the given radius or on a ``"grid"``
    (ceil(sqrt(c)) columns, filled row by row, spanning [-radius, radius]); each blob is an
    isotropic Gaussian in (u, v) with standard deviation ``spread``.

    The defaults give six blobs 1.5 apart (6 spreads) on a ring of radius 1.5 on a sheet that
    bends through most of a sine period: coordinate standard deviations about (1.1, 1.1, 0.45),
    the scale of an N(0, I_3) prior.
    """

    n_components: int = 6
    spread: float = 0.25
    radius: float = 1.5
    layout: str = "ring"
    amplitude: float = 0.6
    frequency: float = 1.5

    def __post_init__(self):
        if not (isinstance(self.n_components, int) and self.n_components >= 1):
            raise ValueError(f"n_components={self.n_components!r} is not allowed: n_components must be an integer >= 1")
        if not self.spread > 0:
            raise ValueError(f"spread={self.spread!r} is not allowed: spread must be > 0")
        if not self.radius >= 0:
            raise ValueError(f"radius={self.radius!r} is not allowed: radius must be >= 0")
        if self.layout not in ("ring", "grid"):
            raise ValueError(f"layout={self.layout!r} is not allowed: layout must be one of 'ring', 'grid'")
        if not self.amplitude >= 0:
            raise ValueError(f"amplitude={self.amplitude!r} is not allowed: amplitude must be >= 0")
        if not self.frequency > 0:
            raise ValueError(f"frequency={self.frequency!r} is not allowed: frequency must be > 0")

    @property
    def dim(self) -> int:
        return 3

    def height(self, u: torch.Tensor) -> torch.Tensor:
        """The surface's z over u, any shape."""
        return self.amplitude * torch.sin(self.frequency * u)

    def centres_uv(self) -> torch.Tensor:
        """Blob centres in the (u, v) plane, shape (c, 2)."""
        c = self.n_components
        if self.layout == "ring":
            angle = 2 * math.pi * torch.arange(c, dtype=torch.float64) / c
            uv = self.radius * torch.stack([angle.cos(), angle.sin()], dim=1)
        else:
            cols = math.ceil(math.sqrt(c))
            rows = math.ceil(c / cols)
            i = torch.arange(c)
            step_u = 2 * self.radius / max(cols - 1, 1)
            step_v = 2 * self.radius / max(rows - 1, 1)
            u = (i % cols).double() * step_u - (cols - 1) * step_u / 2
            v = (i // cols).double() * step_v - (rows - 1) * step_v / 2
            uv = torch.stack([u, v], dim=1)
        return uv.float()

    @property
    def centres(self) -> torch.Tensor:
        """Blob centres on the surface, shape (c, 3)."""
        uv = self.centres_uv()
        return torch.cat([uv, self.height(uv[:, :1])], dim=1)

    @property
    def modes(self) -> torch.Tensor:
        """Alias of ``centres`` (c, 3), for the mode-share metrics."""
        return self.centres

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n points on the surface, shape (n, 3); components take turns, so batches are balanced."""
        device = generator_device(generator)
        which = torch.arange(n, device=device) % self.n_components
        uv = self.centres_uv().to(device)[which] + self.spread * torch.randn(n, 2, generator=generator, device=device)
        return torch.cat([uv, self.height(uv[:, :1])], dim=1)

    def distance_to_surface(self, points: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """Euclidean distance from each point (n, 3) to the surface: shape (n,), float32.

        The nearest surface point shares the point's v, so only
        g(u) = (x - u)^2 + (z - a sin(f u))^2 is minimised.  Its minimiser lies within
        |u - x| <= |z| + a (the surface point above x is that close); a grid with spacing
        below 1 / (16 f) brackets it, and golden-section search inside the bracket refines it
        to float64 precision.
        """
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"points must have shape (n, 3), got {tuple(points.shape)}")
        out = [self._distance_chunk(points[i:i + chunk].detach().double().cpu())
               for i in range(0, points.shape[0], chunk)]
        return torch.cat(out).float() if out else torch.zeros(0)

    def _distance_chunk(self, p: torch.Tensor) -> torch.Tensor:
        x, z = p[:, :1], p[:, 2:]                                        # (n, 1) each, float64
        a, f = self.amplitude, self.frequency

        def g(u):                                                        # squared distance, (n, j)
            return (x - u) ** 2 + (z - a * torch.sin(f * u)) ** 2

        reach = z.abs() + a + 1e-12                                      # (n, 1)
        n_grid = min(max(math.ceil(32 * f * reach.max().item()), 64), 100_000) + 1
        t = torch.linspace(-1.0, 1.0, n_grid, dtype=torch.float64)
        best = torch.full_like(x, math.inf)
        u0 = x.clone()
        for start in range(0, n_grid, 1024):                             # coarse grid, in blocks
            u = x + reach * t[start:start + 1024]                        # (n, <= 1024)
            gu = g(u)
            val, k = gu.min(dim=1, keepdim=True)
            better = val < best
            best = torch.where(better, val, best)
            u0 = torch.where(better, u.gather(1, k), u0)
        h = 2 * reach / (n_grid - 1)
        lo, hi = u0 - h, u0 + h                                          # brackets the minimiser
        ratio = (math.sqrt(5) - 1) / 2
        for _ in range(80):                                              # golden-section search
            c, d = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
            left = g(c) < g(d)                                           # minimum lies in [lo, d]
            hi = torch.where(left, d, hi)
            lo = torch.where(left, lo, c)
        best = torch.minimum(best, g((lo + hi) / 2))
        return best.clamp_min(0).sqrt()[:, 0]


@dataclass(frozen=True)
class StandardNormal:
    """The prior N(0, I) in ``dim`` dimensions: sample(n) -> (n, dim)."""

    dim: int

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.dim, generator=generator, device=generator_device(generator))


def seeded(seed: int, device: torch.device | str | None = None) -> torch.Generator:
    """A generator with the given seed on ``device`` (default: the CPU).

    Samples drawn with it are made on that device.  A CPU generator gives the same numbers on every
    machine; a CUDA one is seeded the same way but its stream differs from the CPU's.
    """
    g = torch.Generator(device="cpu" if device is None else device)
    g.manual_seed(int(seed))
    return g


def generator_device(generator: torch.Generator | None) -> torch.device:
    """Where a sample drawn with ``generator`` is made: the generator's device, the CPU without one."""
    return torch.device("cpu") if generator is None else generator.device
