"""Execution profiles: the names every chapter knows, and a chapter's settings for one of them."""
from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

PROFILES = ("ci", "full", "paper")


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is not allowed: profile must be one of {', '.join(PROFILES)} "
                         f"('ci': the whole book in a few minutes on 2 CPU cores; 'full': the published book; "
                         f"'paper': larger MNIST runs meant for a GPU)")
    return profile


def resolve(profiles: dict[str, Any], profile: str, **overrides) -> Any:
    """The profile's settings (a dataclass instance) with every override that is not None applied."""
    check_profile(profile)
    # "paper" enlarges only the chapters that define it (MNIST); the others use their full settings
    base = profiles[profile if profile in profiles else "full"]
    names = {f.name for f in fields(base)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}; known: {sorted(names)}")
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
