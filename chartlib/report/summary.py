"""The summary chapter's input: the chapters' metrics JSON (``_build/metrics/<notebook>.json``),
checked to come from one profile.  The claims and their verdicts are decided in
``chartlib.report.claims``; the build's times are on the build record's page
(``chartlib.report.build_record``).  Nothing here trains or samples."""
from __future__ import annotations

import json
from pathlib import Path

from chartlib.chapters.registry import chapters
from chartlib.common.paths import build_dir


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
