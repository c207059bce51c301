"""Numbers in words, one way everywhere: a number to a few significant digits by its magnitude, a
list of per-seed values or a ``measure.scores.spread`` summary as "mean ± sd"."""
from __future__ import annotations

import math
import re
import statistics

# Numbers in this range print in positional notation (an FD of 1226 reads "1226", not "1.23e+03");
# only smaller or larger magnitudes use scientific notation.
PLAIN_LOW, PLAIN_HIGH = 1e-3, 1e6

_SIGNIFICANT = re.compile(r"\.(\d+)g")


def number(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits chosen by its magnitude, trailing zeros dropped
    (12.34 -> "12.3", 0.0123 -> "0.0123"); the integer part is never rounded away (1226.4 -> "1226"),
    and scientific notation is kept for |x| < 1e-3 or |x| >= 1e6 (1.5e-05 -> "1.5e-05")."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if not PLAIN_LOW <= abs(x) < PLAIN_HIGH:
        return f"{x:.{digits}g}"
    exponent = int(f"{abs(x):.{max(digits - 1, 0)}e}".split("e")[1])     # after rounding: 9.996 -> 10.0
    text = f"{x:.{max(digits - 1 - exponent, 0)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _fmt(x: float, fmt: str) -> str:
    """``x`` in a format spec; ".Ng" means N significant digits by magnitude (``number``)."""
    significant = _SIGNIFICANT.fullmatch(fmt)
    return number(x, int(significant.group(1))) if significant else format(x, fmt)


def mean_sd(values: list[float], fmt: str = ".3f", sd_fmt: str | None = None, seeds: bool = False) -> str:
    """"mean ± sd" of per-seed values (``sd_fmt`` defaults to ``fmt``), or the value itself for one seed;
    ``seeds`` adds "over n seeds" (or "(1 seed)").  A ".Ng" format gives N significant digits by
    magnitude, without scientific notation for ordinary magnitudes (``number``)."""
    if len(values) == 1:
        return _fmt(values[0], fmt) + (" (1 seed)" if seeds else "")
    text = f"{_fmt(statistics.fmean(values), fmt)} ± {_fmt(statistics.stdev(values), sd_fmt or fmt)}"
    return text + (f" over {len(values)} seeds" if seeds else "")


def seeds_pm(values: list[float]) -> str:
    """Per-seed values as "mean ± sd" to 3 (mean) and 2 (sd) significant digits (one seed: the value)."""
    return mean_sd(values, ".3g", ".2g")


def spread_text(summary: dict, fmt: str = ".3f") -> str:
    """"mean ± std" of a ``spread`` summary (the std of one seed is 0)."""
    return f"{_fmt(summary['mean'], fmt)} ± {_fmt(summary['std'], fmt)}"


def percent(share: float) -> str:
    """A share as whole percent with a space, e.g. 0.95 -> "95 %"."""
    return f"{share * 100:.0f} %"
