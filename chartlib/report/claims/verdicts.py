"""Verdicts and claim rows, shared by every chapter's claims (no torch).

Verdicts: "reproduced" when the rule holds in every seed (or for every arm it names), "partly" when
it holds in some, "not reproduced" when in none, "not tested" when the chapter did not measure it.
For the book's own claims "reproduced" means that the claim holds in this build.  A verdict may
carry a qualifier after a comma ("reproduced, inside the seed spread (...)"); ``verdict_word`` gives
the verdict itself.
"""
from __future__ import annotations

from ..format import mean_sd

VERDICTS = ("reproduced", "partly", "not reproduced", "not tested")
COLOURS = {"reproduced": "#d9f2d9", "partly": "#fff0c2", "not reproduced": "#f8d4d4", "not tested": "#e8e8e8"}


def verdict_word(text: str) -> str:
    """The verdict of a verdict cell, without its qualifier: one of ``VERDICTS``."""
    return text.split(",")[0].strip()


def verdict_style(key: str, value) -> str:
    """Inline CSS for a summary table cell: the verdict cell is coloured by its verdict (dark text, so
    that it reads in the dark theme too), the re-run command is set as code."""
    if key == "verdict":
        return f"background: {COLOURS[verdict_word(value)]}; color: #222; font-weight: 600"
    if key == "command":   # one line, so that "--profile" is not broken at its hyphen
        return "font-family: var(--pst-font-family-monospace, monospace); font-size: 0.9em; white-space: nowrap"
    return ""


def verdict(reproduced: bool | None) -> str:
    """The verdict word of a single rule's outcome (None: not tested)."""
    return {True: "reproduced", False: "not reproduced", None: "not tested"}[reproduced]


def count_verdict(held: int, total: int) -> str:
    """The verdict of a rule that held in ``held`` of ``total`` seeds (or arms)."""
    if total == 0:
        return "not tested"
    return "reproduced" if held == total else ("partly" if held else "not reproduced")


def per_seed(values: list[float], fmt: str = ".3f") -> str:
    """Per-seed values in a claim row: "mean ± sd over n seeds", or "value (1 seed)"."""
    return mean_sd(values, fmt, seeds=True)


def row(stem: str, source: str, claim: str, measurement: str, value: str, rule: str, verdict: str,
        keys: tuple[str, ...] = (), seeds: tuple[int, ...] | None = None) -> dict:
    """One claim row; ``chapter`` (the title), its evidence and the command that re-runs it are added by
    ``chartlib.report.claims.claims``.  ``keys``: where in the chapter's measurements the value comes
    from, as dotted paths (``"arms.chart"``, ``"sweep"``); ``seeds``: the seeds used when the rule
    reads only some of them (default: every seed recorded under ``keys``)."""
    if verdict_word(verdict) not in VERDICTS:
        raise ValueError(f"verdict={verdict!r} is not allowed: verdict must be one of {', '.join(VERDICTS)}")
    if verdict_word(verdict) != "not tested" and not keys:
        raise ValueError(f"claim {claim!r}: name the measurements it reads (keys=...)")
    return {"stem": stem, "source": source, "claim": claim, "measurement": measurement, "value": value,
            "rule": rule, "verdict": verdict, "keys": list(keys), "seeds_used": None if seeds is None else list(seeds)}
