"""Numbers in words, one way everywhere: a list of per-seed values or a ``measure.scores.spread``
summary as "mean ± sd"."""
from __future__ import annotations

import statistics


def mean_sd(values: list[float], fmt: str = ".3f", sd_fmt: str | None = None, seeds: bool = False) -> str:
    """"mean ± sd" of per-seed values (``sd_fmt`` defaults to ``fmt``), or the value itself for one seed;
    ``seeds`` adds "over n seeds" (or "(1 seed)")."""
    if len(values) == 1:
        return f"{values[0]:{fmt}}" + (" (1 seed)" if seeds else "")
    text = f"{statistics.fmean(values):{fmt}} ± {statistics.stdev(values):{sd_fmt or fmt}}"
    return text + (f" over {len(values)} seeds" if seeds else "")


def spread_text(summary: dict, fmt: str = ".3f") -> str:
    """"mean ± std" of a ``spread`` summary (the std of one seed is 0)."""
    return f"{summary['mean']:{fmt}} ± {summary['std']:{fmt}}"


def percent(share: float) -> str:
    """A share as whole percent with a space, e.g. 0.95 -> "95 %"."""
    return f"{share * 100:.0f} %"
