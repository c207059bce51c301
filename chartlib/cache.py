"""On-disk cache of training runs, keyed by the full configuration and the training code.

An entry is two files: ``<key>.pt`` (tensors, loaded with ``weights_only=True``) and
``<key>.json`` (the config, the payload's SHA-256 and bookkeeping), each written to a temporary
file and renamed into place, the JSON last.  On read, a missing, unparsable, mismatched or
checksum-failing entry is reported and retrained; it is never used.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from . import methods
from .paths import atomic_write, cache_dir

FORMAT = 1
# modules whose source decides what a run produces; editing any of them invalidates the cache
_TRAINING_SOURCES = ("data.py", "drift.py", "nets.py", "methods.py", "mnist.py")


def code_version() -> str:
    """SHA-256 (first 12 hex digits) of the training code's source files."""
    h = hashlib.sha256()
    root = Path(__file__).parent
    for name in _TRAINING_SOURCES:
        h.update((root / name).read_bytes())
    return h.hexdigest()[:12]


def run_key(cfg) -> str:
    """Cache key of a config: method, every field, code version."""
    method = methods.CONFIGS[type(cfg)]
    blob = json.dumps({"method": method, "config": asdict(cfg), "code": code_version(), "format": FORMAT},
                      sort_keys=True, default=str)
    return f"{method}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}"


def save(run: methods.Run, key: str, folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({"steps": run.steps, "frames": run.frames, "final": run.final, "history": run.history,
                "state": run.state}, buf)
    payload = buf.getvalue()
    atomic_write(folder / f"{key}.pt", payload)
    meta = {"format": FORMAT, "key": key, "method": run.method, "config": run.config,
            "sha256": hashlib.sha256(payload).hexdigest(), "seconds": run.seconds, "device": run.device}
    atomic_write(folder / f"{key}.json", json.dumps(meta, indent=1, default=str).encode())


class CacheError(Exception):
    """An entry exists but cannot be trusted."""


def load(key: str, folder: Path, cfg) -> methods.Run | None:
    """The cached run for ``key``, or None if there is none.  Raises CacheError if it is damaged."""
    meta_path, pt_path = folder / f"{key}.json", folder / f"{key}.pt"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise CacheError(f"{meta_path.name} is unreadable ({e})") from e
    expected = json.loads(json.dumps(asdict(cfg), default=str))
    if meta.get("format") != FORMAT or meta.get("key") != key or meta.get("config") != expected:
        raise CacheError(f"{meta_path.name} does not describe this configuration")
    try:
        payload = pt_path.read_bytes()
    except OSError as e:
        raise CacheError(f"{pt_path.name} is missing or unreadable ({e})") from e
    if hashlib.sha256(payload).hexdigest() != meta.get("sha256"):
        raise CacheError(f"{pt_path.name} fails its checksum (truncated or modified)")
    data = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    return methods.Run(method=meta["method"], config=meta["config"], steps=data["steps"], frames=data["frames"],
                       final=data["final"], history=data["history"], state=data["state"],
                       seconds=meta["seconds"], device=meta["device"], cached=True)


def cached(cfg, device=None, folder: Path | None = None) -> methods.Run:
    """Load the run for ``cfg`` from the cache, or train it (and cache it) if absent or damaged."""
    folder = cache_dir() if folder is None else Path(folder)
    key = run_key(cfg)
    try:
        run = load(key, folder, cfg)
    except CacheError as e:
        warnings.warn(f"cache entry {key} ignored and retrained: {e}", stacklevel=2)
        run = None
    if run is not None:
        if os.environ.get("CHARTLIB_PROGRESS", "bar") != "bar":
            print(f"from cache: {key} (trained in {run.seconds:.1f} s on {run.device})")
        return run
    run = methods.TRAINERS[methods.CONFIGS[type(cfg)]](cfg, device=device)
    save(run, key, folder)
    if os.environ.get("CHARTLIB_PROGRESS", "bar") != "bar":
        print(f"saved to cache: {key}")
    return run
