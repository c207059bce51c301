"""Parameter checks: each returns the value (as the type it checks) or raises a ValueError that names
the parameter, the value given and what is allowed."""
from __future__ import annotations

from typing import Any


def _fail(name: str, value: Any, allowed: str):
    raise ValueError(f"{name}={value!r} is not allowed: {name} must be {allowed}")


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high] (no upper bound when ``high`` is None)."""
    allowed = f"an integer >= {low}" if high is None else f"an integer between {low} and {high}"
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        _fail(name, value, allowed)
    return value


def check_float(name: str, value: Any, low: float, high: float | None = None, low_open: bool = True,
                high_open: bool = False) -> float:
    """``value`` as a float in (low, high] (``low_open=False``: from ``low`` on; ``high_open=True``:
    below ``high``; no upper bound when ``high`` is None)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok:
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high))
    if not ok:
        upper = "" if high is None else f" and {'<' if high_open else '<='} {high}"
        bounds = f"{'>' if low_open else '>='} {low}" + upper
        _fail(name, value, f"a number {bounds}")
    return float(value)


def check_floats(name: str, values: Any, low: float = 0.0, low_open: bool = True) -> tuple[float, ...]:
    """A non-empty sequence of numbers, each > ``low`` (``low_open=False``: >= ``low``), as a tuple (one
    number counts as one value)."""
    if isinstance(values, (int, float)):
        values = (values,)
    try:
        out = tuple(check_float(f"{name}[{i}]", v, low, low_open=low_open) for i, v in enumerate(values))
    except TypeError:
        out = ()
    if not out:
        _fail(name, values, f"a non-empty list of numbers {'>' if low_open else '>='} {low}")
    return out


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is True or False."""
    if not isinstance(value, bool):
        _fail(name, value, "True or False")
    return value


def check_choice(name: str, value: Any, allowed: tuple) -> Any:
    """``value`` if it is one of ``allowed``."""
    if value not in allowed:
        _fail(name, value, "one of " + ", ".join(map(repr, allowed)))
    return value


def check_choices(name: str, values: Any, allowed: tuple[str, ...], empty: bool = False) -> tuple[str, ...]:
    """Distinct values, each one of ``allowed``, as a tuple (a single string counts as one value; an
    empty list only with ``empty``)."""
    values = (values,) if isinstance(values, str) else tuple(values)
    if (not values and not empty) or any(v not in allowed for v in values) or len(set(values)) != len(values):
        _fail(name, values, f"a {'' if empty else 'non-empty '}list of distinct values from {', '.join(allowed)}")
    return values


def check_ints(name: str, values: Any, low: int, high: int) -> tuple[int, ...]:
    """A non-empty list of distinct integers in [low, high], as a tuple."""
    if isinstance(values, int) or not values or len(set(values)) != len(values):
        _fail(name, values, f"a non-empty list of distinct integers between {low} and {high}")
    for i, v in enumerate(values):
        check_int(f"{name}[{i}]", v, low, high)
    return tuple(values)
