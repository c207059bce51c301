"""Shared fixtures.  The book is built once per test session, in the ci profile, into a temporary
folder with an empty run cache, exactly as CI's fresh clone would build it.  That build is first
killed part-way on purpose and then resumed, which is how an interrupted build must behave."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # before torch starts its threads (see chartlib.book.build)


def pytest_collection_modifyitems(items):
    """Tests that read the built book carry the ``built_book`` marker: ``-m "not built_book"`` leaves them out."""
    for item in items:
        if "built_book" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.built_book)


@pytest.fixture(autouse=True)
def _quiet_progress(monkeypatch):
    monkeypatch.setenv("CHARTLIB_PROGRESS", "line")


@pytest.fixture
def one_thread():
    """Tiny networks train fastest on one torch thread, and one thread fixes the last bits of a run."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _build_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "chartlib.book", "--profile", "ci", "--output", str(out)]


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """Build (ci profile) into a temporary folder, killed once after a few runs were cached."""
    out = tmp_path_factory.mktemp("book")
    cache = out / "cache"
    env = {**os.environ, "CHARTLIB_CACHE_DIR": str(cache)}
    first = subprocess.Popen(_build_command(out), cwd=ROOT, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and first.poll() is None and len(list(cache.glob("*.json"))) < 3:
        time.sleep(0.5)
    killed_with = len(list(cache.glob("*.json")))
    if first.poll() is None:
        os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    proc = subprocess.run(_build_command(out), cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"book build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    (out / "_build" / "interrupted.txt").write_text(str(killed_with))
    return out / "_build"
