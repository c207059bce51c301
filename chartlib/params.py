"""Notebook parameters: profiles and validation with messages that say what is allowed."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

PROFILES = ("ci", "full", "paper")


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is not allowed: profile must be one of {', '.join(PROFILES)} "
                         f"('ci': the whole book in a few minutes on 2 CPU cores; 'full': the published book; "
                         f"'paper': larger MNIST runs meant for a GPU)")
    return profile


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high], or a ValueError naming the parameter and the range."""
    allowed = f"an integer >= {low}" if high is None else f"an integer between {low} and {high}"
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        raise ValueError(f"{name}={value!r} is not allowed: {name} must be {allowed}")
    return value


def check_float(name: str, value: Any, low: float, high: float | None = None, low_open: bool = True) -> float:
    """``value`` as a float in (low, high] (or [low, high] with low_open=False)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok:
        ok = (value > low if low_open else value >= low) and (high is None or value <= high)
    if not ok:
        rng = f"{'>' if low_open else '>='} {low}" + ("" if high is None else f" and <= {high}")
        raise ValueError(f"{name}={value!r} is not allowed: {name} must be a number {rng}")
    return float(value)


def check_floats(name: str, values: Any, low: float = 0.0) -> tuple[float, ...]:
    """A non-empty sequence of numbers, each > low, as a tuple."""
    if isinstance(values, (int, float)):
        values = (values,)
    try:
        out = tuple(check_float(f"{name}[{i}]", v, low) for i, v in enumerate(values))
    except TypeError:
        out = ()
    if not out:
        raise ValueError(f"{name}={values!r} is not allowed: {name} must be a non-empty list of numbers > {low}")
    return out


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
