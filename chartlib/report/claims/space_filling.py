"""Chapter 3's claim: a deterministic chart of a thin surface leaves it."""
from __future__ import annotations

from .verdicts import count_verdict, per_seed, row

OFF = "0.1"            # off-surface distance threshold the surface claims use (the chapters' first)
RATIO = 5.0            # "leave the surface": samples off it at least this many times as often as reconstructions


def off(p: dict, key: str) -> float:
    """A per-seed record's off-surface share at ``OFF`` for ``key`` ("samples" or "recon")."""
    return p[key]["off_surface"][OFF]


def claims(m: dict) -> list[dict]:
    det = m["arms"]["deterministic"]["per_seed"]
    held = sum(off(p, "samples") >= RATIO * max(off(p, "recon"), 1e-4) for p in det)
    dims = m["arms"]["deterministic"]["summary"]["latent_dimension"]
    return [row("03_space_filling", "note", "A deterministic chart of a thin manifold cannot fill the prior; "
                 "its samples leave the surface",
                 f"share of samples vs reconstructions farther than {OFF} from the surface; two-NN dimension of "
                 "the data latents (prior: 3)",
                 f"samples {per_seed([off(p, 'samples') for p in det])}, reconstructions "
                 f"{per_seed([off(p, 'recon') for p in det])}; latent dimension {dims['mean']:.2f}",
                 f"reproduced if in every seed samples are off the surface at least {RATIO:g}× as often as "
                 "reconstructions (floor 1e-4); partly if in some seeds", count_verdict(held, len(det)),
                 keys=("arms.deterministic",))]


