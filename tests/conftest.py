"""Shared fixtures.  The book is built once per test session, in the ci profile, into a temporary
folder with an empty run cache, exactly as CI's fresh clone would build it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _quiet_progress(monkeypatch):
    monkeypatch.setenv("CHARTLIB_PROGRESS", "line")


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """Run the README's build command (ci profile) into a temporary folder; return its _build."""
    out = tmp_path_factory.mktemp("book")
    env = {**os.environ, "CHARTLIB_CACHE_DIR": str(out / "cache")}
    proc = subprocess.run([sys.executable, "-m", "chartlib.build", "--profile", "ci", "--output", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"book build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out / "_build"
