"""The "How this copy was built" page: what the build record (``_build/timings/<profile>.json``,
kept by ``chartlib.book.timings``) and the chapters' measurements say about the build a reader is
looking at, the whole book's time against its budget, and the command that re-runs one chapter.
Nothing here trains."""
from __future__ import annotations

import json
from pathlib import Path

from chartlib.chapters.registry import chapters
from chartlib.common.paths import build_dir

BUDGETS = {"ci": 300, "full": 2700}   # whole-book wall time a fresh 2-core CPU machine may take, seconds
PAGES = {"06_summary": "Summary", "build_record": "How this copy was built", "render": "rendering (Jupyter Book)"}


def rerun_command(profile: str, stem: str) -> str:
    """The shell command, run at the repository root, that executes just this notebook with the profile's
    parameters (its runs come from the run cache when they are there) and renders the book again."""
    return f"python -m chartlib.book --profile {profile} --only {stem}"


def load_record(profile: str, folder: Path | None = None) -> dict:
    """The build record of ``profile`` in ``folder`` (default: this build's), or {} when there is none."""
    path = (build_dir() if folder is None else Path(folder)) / "timings" / f"{profile}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _titles() -> dict[str, str]:
    return {**{c.stem: c.title for c in chapters()}, **PAGES}


def facts(record: dict, metrics: dict[str, dict]) -> list[dict]:
    """What, where and with what the build ran: rows of {"item", "value"}."""
    machine, versions = record.get("machine", {}), record.get("versions", {})
    devices = sorted({str(m["device"]) for m in metrics.values() if m.get("device")})
    commit = record.get("commit")
    rows = [("commit", f"{commit.rstrip('+')} (with uncommitted changes)" if commit and commit.endswith("+")
             else commit or "not recorded (the build ran outside a git checkout)"),
            ("profile", record.get("profile", "not recorded")),
            ("date (UTC)", record.get("date", "not recorded")),
            ("machine", machine.get("description", "not recorded")),
            ("operating system", machine.get("os", "not recorded")),
            ("training device", ", ".join(devices) or "not recorded")]
    rows += [(name if name == "python" else f"{name} version", v or "not installed") for name, v in versions.items()]
    return [{"item": k, "value": str(v)} for k, v in rows]


def notebook_rows(record: dict, metrics: dict[str, dict]) -> list[dict]:
    """Per notebook the record times, in book order: last execution, cold time (what a fresh machine
    pays; "≈" where runs an earlier build trained are counted at their recorded training time), runs
    trained and runs taken from an earlier build's cache, and the command that re-runs it."""
    profile, titles = record.get("profile", "ci"), _titles()
    seconds = record.get("notebook_seconds", {})
    rows = []
    for stem in [s for s in titles if s in seconds]:
        runs = record.get("runs", {}).get(stem, {})
        cold = record.get("cold_seconds", {}).get(stem, seconds[stem])
        estimated = record.get("cold_estimated", {}).get(stem, False)
        rows.append({"notebook": titles[stem], "stem": stem,
                     "state": record.get("state", {}).get(stem, ""),
                     "seconds": round(seconds[stem]), "cold": f"≈ {cold:.0f}" if estimated else round(cold),
                     "trained": runs.get("trained", 0) if stem != "render" else "",
                     "cached": runs.get("cached", 0) if stem != "render" else "",
                     "device": str(metrics.get(stem, {}).get("device", "")),
                     "command": rerun_command(profile, stem) if stem != "render" else ""})
    return rows


def timing_totals(folder: Path | None = None) -> dict[str, dict]:
    """Per profile built in this folder: the cold total (seconds a fresh machine pays for the whole
    book), whether any part of it is estimated from cached runs, and the budget."""
    out = {}
    for profile, budget in BUDGETS.items():
        t = load_record(profile, folder)
        if t:
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
