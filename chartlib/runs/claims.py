"""A claim per cache key, so that two processes sharing a cache folder never train the same run twice.

A claim is an exclusive ``fcntl.flock`` on ``<folder>/.claims/<key>.lock``, held by the process that
trains the run until it has saved it.  The kernel drops the lock when that process ends, however it
ends, so a killed build leaves no claim behind.  The lock files themselves stay (removing one while
another process waits on it would let a third take a second lock); they are empty.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

FOLDER = ".claims"
POLL_SECONDS = 0.2


class Claim:
    """A held claim on one key; ``release`` (or the end of the process) lets others have it."""

    def __init__(self, key: str, fd: int | None):
        self.key, self._fd = key, fd

    def release(self):
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)            # closing the descriptor drops the lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _open(folder: Path, key: str) -> int | None:
    try:
        (folder / FOLDER).mkdir(parents=True, exist_ok=True)
        return os.open(folder / FOLDER / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None


def try_claim(folder: Path, key: str) -> Claim | None:
    """The claim on ``key`` if no other process holds it, else None.  Where no lock file can be made
    (a read-only folder) the claim is granted without a lock: nothing is cached there anyway."""
    fd = _open(folder, key)
    if fd is None:
        return Claim(key, None)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:               # a filesystem without flock: no coordination, as before claims
        os.close(fd)
        return Claim(key, None)
    return Claim(key, fd)


def wait_claim(folder: Path, key: str, timeout: float | None = None) -> Claim | None:
    """Wait until the claim on ``key`` is free and take it (None after ``timeout`` seconds).  The wait
    polls, so an interrupt stops it at once."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        claim = try_claim(folder, key)
        if claim is not None:
            return claim
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)
