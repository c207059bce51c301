"""Every claim the book tests: each chapter's module here (named like the chapter's) has
``claims(metrics) -> rows``; this package collects them in book order for the summary."""
from __future__ import annotations

import importlib
import importlib.util

from chartlib.chapters.registry import chapters

from .verdicts import VERDICTS, verdict_style, verdict_word

__all__ = ["claims", "tally", "verdict_style", "verdict_word", "VERDICTS"]


def claims(metrics: dict[str, dict]) -> list[dict]:
    """Every claim with its measurement, value, rule and verdict, in chapter order (the note's claims
    first within a chapter); ``metrics``: the chapters' measurements by notebook stem."""
    rows = []
    for chapter in chapters():
        if chapter.stem not in metrics or importlib.util.find_spec(f"{__name__}.{chapter.name}") is None:
            continue
        module = importlib.import_module(f"{__name__}.{chapter.name}")
        chapter_rows = [{"chapter": chapter.title, **r} for r in module.claims(metrics[chapter.stem])]
        rows += sorted(chapter_rows, key=lambda r: r["source"] != "note")
    return rows


def tally(rows: list[dict], source: str) -> dict[str, int]:
    """How many of ``source``'s claims ("note" or "book") got each verdict."""
    return {v: sum(verdict_word(r["verdict"]) == v and r["source"] == source for r in rows) for v in VERDICTS}
