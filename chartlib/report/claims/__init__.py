"""Every claim the book tests: each chapter's module here (named like the chapter's) has
``claims(metrics) -> rows``; this package collects them in book order for the summary."""
from __future__ import annotations

import importlib
import importlib.util

from chartlib.chapters.registry import chapters

from ..build_record import rerun_command
from .verdicts import VERDICTS, verdict_style, verdict_word

__all__ = ["claims", "tally", "verdict_style", "verdict_word", "VERDICTS"]


def claims(metrics: dict[str, dict]) -> list[dict]:
    """Every claim with its measurement, value, rule and verdict, in chapter order (the note's claims
    first within a chapter); ``metrics``: the chapters' measurements by notebook stem.  Each row also
    says where its value comes from (``evidence``: the keys of the chapter's measurements and their
    seeds) and how to re-run just that chapter (``command``)."""
    rows = []
    for chapter in chapters():
        if chapter.stem not in metrics or importlib.util.find_spec(f"{__name__}.{chapter.name}") is None:
            continue
        module = importlib.import_module(f"{__name__}.{chapter.name}")
        m = metrics[chapter.stem]
        command = rerun_command(m["profile"], chapter.stem)
        chapter_rows = [{"chapter": chapter.title, **r, **evidence(m, r), "command": command} for r in module.claims(m)]
        rows += sorted(chapter_rows, key=lambda r: r["source"] != "note")
    return rows


def _node(m: dict, key: str):
    node = m
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def seeds_under(node) -> list[int]:
    """Every seed recorded in a ``per_seed`` list under ``node`` (an arm, or a sweep of arms)."""
    if isinstance(node, dict):
        found = {p["seed"] for p in node.get("per_seed", []) if isinstance(p, dict) and "seed" in p}
        for k, v in node.items():
            if k != "per_seed":
                found |= set(seeds_under(v))
        return sorted(found)
    return []


def evidence(m: dict, r: dict) -> dict:
    """Where a claim row's value comes from, read from the chapter's measurements ``m``: per key its
    seeds (all recorded under it, or the row's ``seeds_used``), as data (``sources``) and in words."""
    sources = []
    for key in r["keys"]:
        node = _node(m, key)
        seeds = r["seeds_used"] if r["seeds_used"] is not None else seeds_under(node)
        sources.append({"key": key, "measured": node is not None, "seeds": seeds if node is not None else []})
    groups: list[tuple[list[str], list[int], bool]] = []   # neighbouring keys with the same seeds share them
    for s in sources:
        if groups and groups[-1][1:] == (s["seeds"], s["measured"]):
            groups[-1][0].append(s["key"])
        else:
            groups.append(([s["key"]], s["seeds"], s["measured"]))
    words = "; ".join(", ".join(keys) + (f", seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
                                         if seeds else "") + ("" if measured else " (not measured)")
                      for keys, seeds, measured in groups)
    return {"sources": sources, "evidence": words or "not measured"}


def tally(rows: list[dict], source: str) -> dict[str, int]:
    """How many of ``source``'s claims ("note" or "book") got each verdict."""
    return {v: sum(verdict_word(r["verdict"]) == v and r["source"] == source for r in rows) for v in VERDICTS}
