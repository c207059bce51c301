"""On-disk cache of training runs, keyed by the full configuration and the training code.

An entry is two files: ``<key>.pt`` (tensors, loaded with ``weights_only=True``) and
``<key>.json`` (the config, the payload's SHA-256 and bookkeeping), each written to a temporary
file and renamed into place, the JSON last.  On read, a missing, unparsable, mismatched or
checksum-failing entry is reported and retrained; it is never used.  A cache folder that cannot be
written is found before training: the run then trains without being cached, with a warning.  A write
that fails later (a full disk) leaves nothing behind and warns once: the run is still returned.  The
first lookup in a folder sweeps what a killed writer left there (``*.tmp`` files, a ``.pt`` without
its ``.json``), once it is more than ``STALE_SECONDS`` old, so a concurrent writer is not harmed.

Every run ``cached`` hands out is also noted as data: ``LEDGER`` (this process) and, when
``$CHARTLIB_RUN_LEDGER`` names a file, one JSON line there per run (key, trained or loaded, training
seconds).  The book build reads that file to tell what each notebook trained.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from chartlib import core, datasets
from chartlib.common.checks import check_int
from chartlib.common.paths import atomic_write, cache_dir
from chartlib.core import methods

FORMAT = 2
# the packages whose source decides what a run produces: every Python file in them, a new one included,
# enters the code version, so editing or adding any of them invalidates the cache
DECIDING_PACKAGES = (core, datasets)
LEDGER: list[dict] = []
STALE_SECONDS = 60.0            # a leftover this old is no concurrent writer's: it is swept
_SWEPT: set[Path] = set()       # folders swept in this process
_SAVE_WARNED: set[Path] = set()  # folders whose failed save was reported in this process


def code_version(packages=DECIDING_PACKAGES) -> str:
    """SHA-256 (first 12 hex digits) over every ``.py`` file of ``packages``, by path within the package."""
    h = hashlib.sha256()
    for package in packages:
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(f"{package.__name__}/{path.relative_to(root).as_posix()}".encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _method_name(cfg) -> str:
    if type(cfg) not in methods.METHODS:
        raise TypeError(f"no training method for {type(cfg).__name__}")
    return methods.METHODS[type(cfg)].name


def run_key(cfg) -> str:
    """Cache key of a config: method, every field (with the kinds of encoder and field), code version."""
    method = _method_name(cfg)
    blob = json.dumps({"method": method, "config": _described(cfg), "code": code_version(), "format": FORMAT},
                      sort_keys=True, default=str)
    return f"{method}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}"


def _described(cfg) -> dict:
    """``asdict(cfg)`` with the class name of every nested settings object (two fields with the same
    settings but different kinds must not share a key)."""
    out = asdict(cfg)
    for name in ("field", "encoder"):
        if hasattr(cfg, name):
            out[name] = {"kind": type(getattr(cfg, name)).__name__, **out[name]}
    return json.loads(json.dumps(out, default=str))


def save(run: methods.Run, key: str, folder: Path, cfg, stacklevel: int = 2) -> bool:
    """Store ``run`` as the entry ``key``; True if stored.  Each file goes through a temporary file
    replaced whole, the JSON last.  A write that fails (a full disk: ENOSPC, or any OSError) removes
    what it had written of this entry, warns once per folder and returns False: the run is not lost,
    only not cached."""
    buf = io.BytesIO()
    torch.save({"steps": run.steps, "frames": run.frames, "final": run.final, "history": run.history,
                "state": run.state}, buf)
    payload = buf.getvalue()
    meta = {"format": FORMAT, "key": key, "method": run.method, "config": _described(cfg),
            "sha256": hashlib.sha256(payload).hexdigest(), "seconds": run.seconds, "device": run.device}
    pt_path, meta_path = folder / f"{key}.pt", folder / f"{key}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(pt_path, payload)
        atomic_write(meta_path, json.dumps(meta, indent=1, default=str).encode())
    except OSError as e:
        for path in (meta_path, pt_path):      # an old JSON beside a new payload would only fail its checksum
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
        resolved = folder.resolve()
        if resolved not in _SAVE_WARNED:
            _SAVE_WARNED.add(resolved)
            warnings.warn(f"the run cache could not store {key} in {folder}: {e.strerror or e}. The run goes on "
                          f"uncached (and so will later ones that fail the same way); free space there or set "
                          f"CHARTLIB_CACHE_DIR to a folder with room.", stacklevel=stacklevel + 1)
        return False
    return True


def sweep(folder: Path, min_age: float = STALE_SECONDS) -> list[str]:
    """Remove what a killed writer left in ``folder``: ``*.tmp`` files and ``.pt`` payloads without their
    ``.json`` (the JSON is written last, so such a payload was never a whole entry), once at least
    ``min_age`` seconds old.  Returns the names removed; a file that cannot be removed is left."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    now = time.time()
    for path in entries:
        stray = path.name.endswith(".tmp") or (path.suffix == ".pt" and not path.with_suffix(".json").exists())
        if not stray:
            continue
        try:
            if path.is_file() and now - path.stat().st_mtime >= min_age:
                path.unlink()
                removed.append(path.name)
        except OSError:
            pass
    return removed


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
    if meta.get("format") != FORMAT or meta.get("key") != key or meta.get("config") != _described(cfg):
        raise CacheError(f"{meta_path.name} does not describe this configuration")
    try:
        payload = pt_path.read_bytes()
    except OSError as e:
        raise CacheError(f"{pt_path.name} is missing or unreadable ({e})") from e
    if hashlib.sha256(payload).hexdigest() != meta.get("sha256"):
        raise CacheError(f"{pt_path.name} fails its checksum (truncated or modified)")
    data = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    return methods.Run(method=meta["method"], config=asdict(cfg), steps=data["steps"], frames=data["frames"],
                       final=data["final"], history=data["history"], state=data["state"],
                       seconds=meta["seconds"], device=meta["device"], cached=True)


def writable(folder: Path) -> str | None:
    """None if entries can be written to ``folder`` (created if missing), else why not."""
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        where = "" if blocker == folder else f" (a folder above {folder})"
        return (f"{blocker} is not a folder: it is an existing file{where}; move it away, or point "
                f"CHARTLIB_CACHE_DIR at a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe."):
            pass
    except OSError as e:
        return f"{e.strerror or e} ({folder})"
    return None


def _note(key: str, run: methods.Run, event: str):
    entry = {"key": key, "event": event, "seconds": round(run.seconds, 3), "device": run.device}
    LEDGER.append(entry)
    path = os.environ.get("CHARTLIB_RUN_LEDGER")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


def _lookup(cfg, key: str, folder: Path, stacklevel: int = 3) -> methods.Run | None:
    """The cached run, or None when absent or damaged (a damaged entry is reported).  The first lookup
    in a folder sweeps its stale leftovers."""
    if folder.resolve() not in _SWEPT:
        _SWEPT.add(folder.resolve())
        sweep(folder)
    try:
        return load(key, folder, cfg)
    except CacheError as e:
        warnings.warn(f"cache entry {key} ignored and retrained: {e}", stacklevel=stacklevel)
        return None


def _unwritable(folder: Path, key: str, stacklevel: int = 3) -> str | None:
    problem = writable(folder)
    if problem:
        warnings.warn(f"the run cache cannot be written: {problem}. Training {key} without caching it; set "
                      f"CHARTLIB_CACHE_DIR to a writable folder to keep trained runs.", stacklevel=stacklevel)
    return problem


def cached(cfg, device=None, folder: Path | None = None, label: str | None = None) -> methods.Run:
    """Load the run for ``cfg`` from the cache, or train it (and cache it) if absent or damaged.
    ``label`` names the run in progress bars and errors (default: method and seed)."""
    folder = cache_dir() if folder is None else Path(folder)
    key = run_key(cfg)
    run = _lookup(cfg, key, folder)
    if run is not None:
        _note(key, run, "loaded")
        return run
    problem = _unwritable(folder, key)
    run = methods.train_run(cfg, device=device, label=label)
    if not problem:
        save(run, key, folder, cfg)
    _note(key, run, "trained")
    return run


def _train_in_worker(cfg, device: str, label: str | None) -> bytes:
    """Runs in a worker process (``chartlib.runs.workers.worker_pool``): train ``cfg`` and return the Run's
    tensors and numbers serialised with ``torch.save`` (bytes cross the process boundary intact)."""
    import contextlib
    with contextlib.redirect_stdout(io.StringIO()):      # the parent prints one line per finished run
        run = methods.train_run(cfg, device=device, label=label)
    buf = io.BytesIO()
    torch.save({"method": run.method, "steps": run.steps, "frames": run.frames, "final": run.final,
                "history": run.history, "state": run.state, "seconds": run.seconds, "device": run.device}, buf)
    return buf.getvalue()


def _unpacked(payload: bytes, cfg) -> methods.Run:
    d = torch.load(io.BytesIO(payload), weights_only=True)
    return methods.Run(method=d["method"], config=asdict(cfg), steps=d["steps"], frames=d["frames"], final=d["final"],
                       history=d["history"], state=d["state"], seconds=d["seconds"], device=d["device"])


def cached_all(cfgs: list, device=None, folder: Path | None = None, labels: list[str | None] | None = None,
               workers: int | None = None) -> list[methods.Run]:
    """``[cached(c) for c in cfgs]``, with the runs missing from the cache trained side by side in
    ``workers`` processes (default ``chartlib.runs.workers.default_workers``: ``$CHARTLIB_WORKERS``, else 1;
    always 1 off the CPU; 1 trains one after the other in this process, as ``cached`` does).

    Each worker uses this process's torch thread count, so every run is bit for bit the run trained
    alone.  This process saves each run as it arrives and notes it in the ledger as trained; a run
    that fails (``TrainingDiverged``) raises its own error here and stops the workers: the runs that
    had finished are cached (as one after the other), the failed and unfinished ones are not."""
    from chartlib.core.nets import pick_device

    from . import workers as pool
    folder = cache_dir() if folder is None else Path(folder)
    labels = list(labels) if labels is not None else [None] * len(cfgs)
    if len(labels) != len(cfgs):
        raise ValueError(f"labels has {len(labels)} entries for {len(cfgs)} configs")
    dev = pick_device() if device is None else torch.device(device)
    workers = pool.default_workers(dev) if workers is None else check_int("workers", workers, 1, 256)
    if dev.type != "cpu":
        workers = 1
    keys = [run_key(c) for c in cfgs]
    found: dict[str, methods.Run] = {}
    missing: dict[str, int] = {}          # key -> index of its first config
    if workers > 1:
        for i, (c, k) in enumerate(zip(cfgs, keys)):
            if k in found or k in missing:
                continue
            run = _lookup(c, k, folder, stacklevel=2)
            if run is None:
                missing[k] = i
            else:
                found[k] = run
    if len(missing) > 1 and writable(folder) is None:
        found.update(_train_side_by_side([(k, cfgs[i], labels[i]) for k, i in missing.items()], str(dev), folder,
                                         min(workers, len(missing))))
    out, handed = [], set()
    for c, k, label in zip(cfgs, keys, labels):
        if k in found and k not in handed:
            run = found[k]
            if run.cached:
                _note(k, run, "loaded")
            handed.add(k)
            out.append(run)
        else:
            out.append(cached(c, device=dev, folder=folder, label=label))
    return out


def _lost(jobs: list[tuple], trained: dict, folder: Path):
    from .workers import RunLost
    names = [label or f"{type(cfg).__name__} seed {cfg.schedule.seed}" for k, cfg, label in jobs if k not in trained]
    return RunLost(f"a worker process died (killed, or out of memory) while these runs were training or waiting: "
                   f"{', '.join(names)}. The {len(trained)} run(s) that had finished are cached in {folder}; "
                   f"run it again to train the rest (CHARTLIB_WORKERS=1 trains one run at a time, in this process)")


def _train_side_by_side(jobs: list[tuple], device: str, folder: Path, workers: int) -> dict[str, methods.Run]:
    """Train ``(key, cfg, label)`` jobs in the worker pool; save and note each as it finishes."""
    import queue

    from . import workers as pools
    pool = pools.worker_pool(workers, torch.get_num_threads())
    done: queue.Queue = queue.Queue()
    for k, cfg, label in jobs:
        pool.apply_async(_train_in_worker, (cfg, device, label), callback=lambda r, k=k: done.put((k, r, None)),
                         error_callback=lambda e, k=k: done.put((k, None, e)))
    bar = None
    if os.environ.get("CHARTLIB_PROGRESS", "bar") == "bar":            # interactive: one bar over the runs
        from tqdm.std import tqdm
        bar = tqdm(total=len(jobs), desc=f"{len(jobs)} runs in {workers} workers", unit="run", file=sys.stdout)
    else:
        print(f"training {len(jobs)} runs in {workers} worker processes")
    trained, by_key = {}, {k: (cfg, label) for k, cfg, label in jobs}
    try:
        for _ in jobs:
            while True:
                try:
                    k, payload, e = done.get(timeout=0.2)    # a timeout keeps the wait interruptible
                    break
                except queue.Empty:
                    if pools.lost_workers():
                        raise _lost(jobs, trained, folder) from None
                    continue
            cfg, label = by_key[k]
            if e is not None:
                raise e         # its own type and message (TrainingDiverged names the run and the step)
            run = _unpacked(payload, cfg)
            save(run, k, folder, cfg, stacklevel=3)
            _note(k, run, "trained")
            trained[k] = run
            name = label or f"{run.method} seed {cfg.schedule.seed}"
            if bar is not None:
                bar.set_postfix_str(f"{name}: {run.seconds:.1f} s", refresh=False)
                bar.update(1)
            else:
                print(f"trained {name}: {cfg.schedule.steps} steps in {run.seconds:.1f} s (worker)")
    except BaseException:
        pools.close_pool()        # a failure or an interrupt: stop the workers; what they had is not cached
        raise
    finally:
        if bar is not None:
            bar.close()
    return trained
