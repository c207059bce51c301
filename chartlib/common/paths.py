"""Where the book writes things (the build folder, the metrics JSON, the run cache) and how a file is
replaced whole."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]   # the repository root (chartlib/common/paths.py)


def book_build() -> bool:
    """True while ``python -m chartlib.book`` executes the notebook (it sets ``CHARTLIB_BOOK_BUILD=1``):
    the output becomes a static page, read rather than run."""
    return os.environ.get("CHARTLIB_BOOK_BUILD") == "1"


def build_dir() -> Path:
    """``_build`` at the repository root, or ``$CHARTLIB_BUILD_DIR``."""
    return Path(os.environ.get("CHARTLIB_BUILD_DIR", ROOT / "_build"))


def cache_dir() -> Path:
    """The run cache: ``.cache/runs`` at the repository root, or ``$CHARTLIB_CACHE_DIR``."""
    return Path(os.environ.get("CHARTLIB_CACHE_DIR", ROOT / ".cache" / "runs"))


def json_safe(obj):
    """The same structure with string keys, tuples as lists, and NaN / infinities as None (JSON has none)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_metrics(stem: str, metrics: dict) -> Path:
    """Write one notebook's measurements to ``_build/metrics/<stem>.json`` and return the path."""
    out = build_dir() / "metrics" / f"{stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_safe(metrics), indent=1))
    return out


def atomic_write(path: Path, data: bytes):
    """Write ``data`` to ``path`` through a temporary file and a rename: readers see the old file
    or the whole new one, never a part (a killed process leaves at most a stray ``.tmp``)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
