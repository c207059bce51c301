"""Execution profiles: the names every chapter knows, and a chapter's settings for one of them."""
from __future__ import annotations

from dataclasses import fields, replace
from functools import cache
from pathlib import Path
from typing import Any

import torch

PROFILES = ("ci", "full", "paper")


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is not allowed: profile must be one of {', '.join(PROFILES)} "
                         f"('ci': the whole book in a few minutes on 2 CPU cores; 'full': the published book; "
                         f"'paper': larger MNIST runs meant for a GPU)")
    return profile


def resolve(profiles: dict[str, Any], profile: str, device: str | torch.device | None = None, **overrides) -> Any:
    """The profile's settings (a dataclass instance) with every override that is not None applied; a
    ``precision="auto"`` is settled for ``device`` (see ``resolve_precision``) when one is given."""
    check_profile(profile)
    # "paper" enlarges only the chapters that define it (MNIST); the others use their full settings
    base = profiles[profile if profile in profiles else "full"]
    names = {f.name for f in fields(base)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}; known: {sorted(names)}")
    settings = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    if device is not None and "precision" in names:
        settings = replace(settings, precision=resolve_precision(settings.precision, device))
    return settings


@cache
def cpu_has_bfloat16_units() -> bool:
    """True when this CPU multiplies bfloat16 in hardware (AVX-512 BF16 or AMX), read from /proc/cpuinfo.

    Without such units torch emulates bfloat16 matmuls, tens of times slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``"auto"`` becomes ``"bfloat16"`` where the device computes it fast (a CUDA GPU with bfloat16, a CPU
    with bfloat16 units), else ``"float32"``; any other value is returned unchanged."""
    if precision != "auto":
        return precision
    kind = torch.device(device).type
    if kind == "cuda":
        return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float32"
    if kind == "cpu":
        return "bfloat16" if cpu_has_bfloat16_units() else "float32"
    return "float32"
