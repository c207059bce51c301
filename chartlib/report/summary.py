"""The summary chapter's inputs: the chapters' metrics JSON (``_build/metrics/<notebook>.json``),
checked to come from one profile, and the build's wall times per notebook against the budgets.
The claims and their verdicts are decided in ``chartlib.report.claims``.  Nothing here trains or samples."""
from __future__ import annotations

import json
from pathlib import Path

from chartlib.chapters.registry import chapters
from chartlib.common.paths import build_dir

BUDGETS = {"ci": 300, "full": 2700}   # whole-book wall time a fresh 2-core CPU machine may take, seconds


class MissingMetrics(FileNotFoundError):
    pass


def load_metrics(folder: Path | None = None, stems: tuple[str, ...] | None = None) -> dict[str, dict]:
    """The chapters' metrics by notebook stem (default: every chapter).  Raises MissingMetrics naming what to run
    first."""
    stems = tuple(c.stem for c in chapters()) if stems is None else stems
    folder = (build_dir() if folder is None else Path(folder)) / "metrics"
    out, missing = {}, []
    for stem in stems:
        path = folder / f"{stem}.json"
        if not path.exists():
            missing.append(stem)
            continue
        try:
            out[stem] = json.loads(path.read_text())
        except ValueError as e:
            raise MissingMetrics(f"{path} is not valid JSON ({e}): re-run that chapter, e.g. "
                                 f"python -m chartlib.book --only {stem}") from None
    if missing:
        raise MissingMetrics(f"no measurements yet for {', '.join(missing)} in {folder}: execute those chapters first "
                             f"(python -m chartlib.book --profile ci, or run the notebooks), then this one")
    profiles = {m.get("profile") for m in out.values()}
    if len(profiles) > 1:
        raise MissingMetrics(f"the chapters' measurements come from different profiles ({sorted(map(str, profiles))}): "
                             f"rebuild them with one profile")
    return out


def timing_rows(folder: Path | None = None) -> tuple[list[dict], dict]:
    """Wall seconds per notebook for each profile built in this folder, and the machine of each.

    A cell is what a fresh machine pays for the notebook: its last execution time, plus the recorded
    training time of runs that execution loaded from an earlier build's cache (marked "≈")."""
    folder = (build_dir() if folder is None else Path(folder)) / "timings"
    found = {}
    for profile in ("ci", "full", "paper"):
        path = folder / f"{profile}.json"
        if path.exists():
            found[profile] = json.loads(path.read_text())
    candidates = [*(c.stem for c in chapters()), "06_summary", "render"]
    stems = [s for s in candidates if any(s in t.get("notebook_seconds", {}) for t in found.values())]

    def cell(t: dict, stem: str):
        if stem not in t.get("cold_seconds", {}):
            return t.get("notebook_seconds", {}).get(stem, "")
        return f"≈ {t['cold_seconds'][stem]:.0f}" if t["cold_estimated"].get(stem) else round(t["cold_seconds"][stem])

    rows = [{"notebook": s, **{p: cell(t, s) for p, t in found.items()}} for s in stems]
    machines = {p: t.get("machine", {}) for p, t in found.items()}
    return rows, machines


def timing_totals(folder: Path | None = None) -> dict[str, dict]:
    """Per profile built in this folder: the cold total (seconds a fresh machine pays for the whole
    book), whether any part of it is estimated from cached runs, and the budget."""
    folder = (build_dir() if folder is None else Path(folder)) / "timings"
    out = {}
    for profile, budget in BUDGETS.items():
        path = folder / f"{profile}.json"
        if path.exists():
            t = json.loads(path.read_text())
            seconds = t.get("cold_total_seconds") or t.get("total_seconds")
            out[profile] = {"seconds": seconds, "estimated": any(t.get("cold_estimated", {}).values()),
                            "budget": budget, "within": seconds is not None and seconds <= budget}
    return out


def timing_sentence(folder: Path | None = None) -> str:
    """The whole-book cold time of each profile built in this folder against its budget, in words."""
    totals = timing_totals(folder)
    if not totals:
        return "No build has recorded its timings in this folder yet (they appear after `python -m chartlib.book`)."
    sentences = [f"A fresh machine needs {'about ' if t['estimated'] else ''}{t['seconds']:.0f} s "
                 f"({t['seconds'] / 60:.1f} min) for the whole {p} book, against a budget of "
                 f"{t['budget'] / 60:.0f} min ({'within' if t['within'] else 'over'} it)." for p, t in totals.items()]
    return " ".join(sentences) + (" Values marked ≈ add the recorded training time of runs this folder's cache "
                                  "already held.")
