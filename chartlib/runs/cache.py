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


def _unwritable(folder: Path, keys: list[str], stacklevel: int = 3) -> str | None:
    problem = writable(folder)
    if problem:
        names = ", ".join(keys)
        warnings.warn(f"the run cache cannot be written: {problem}. Training {names} without caching it; set "
                      f"CHARTLIB_CACHE_DIR to a writable folder to keep trained runs.", stacklevel=stacklevel)
    return problem


def cached(cfg, device=None, folder: Path | None = None, label: str | None = None) -> methods.Run:
    """Load the run for ``cfg`` from the cache, or train it here (and cache it) if absent or damaged.
    ``label`` names the run in progress bars and errors (default: method and seed)."""
    from .executors import Inline
    return cached_all([cfg], device=device, folder=folder, labels=[label], executor=Inline())[0]


def _train_job(cfg, device: str | None, label: str | None, threads: int, code: str, in_process: bool):
    """Train ``cfg``.  In this process: the Run.  In a worker (a pool's process or a Dask worker): the
    Run's tensors and numbers serialised with ``torch.save`` (bytes cross any boundary intact), trained
    on ``threads`` torch threads (this process's count, so the bits do not depend on where it trained)
    and on the worker's own device when ``device`` is None."""
    if in_process:
        return methods.train_run(cfg, device=device, label=label)
    import contextlib
    if code != code_version():
        raise RuntimeError(f"this worker's chartlib code version is {code_version()}, the client's {code}: install "
                           f"the client's chartlib on every worker (runs trained by other code would be cached "
                           f"under this code's keys)")
    os.environ["CHARTLIB_PROGRESS"] = "line"            # no progress bars in workers; the client reports
    torch.set_num_threads(threads)
    with contextlib.redirect_stdout(io.StringIO()):
        run = methods.train_run(cfg, device=_placed(device), label=label)
    buf = io.BytesIO()
    torch.save({"method": run.method, "steps": run.steps, "frames": run.frames, "final": run.final,
                "history": run.history, "state": run.state, "seconds": run.seconds, "device": run.device}, buf)
    return buf.getvalue()


def _placed(device: str | None):
    """The device a worker trains on: ``device``, or its own best; on a Dask worker of several GPUs'
    machine, the GPU of its number (a ``LocalCluster`` names its workers 0, 1, ...), one run per GPU."""
    from chartlib.core.nets import pick_device
    dev = pick_device() if device is None else torch.device(device)
    if dev.type == "cuda" and dev.index is None and torch.cuda.device_count() > 1:
        try:
            from distributed import get_worker
            name = str(get_worker().name)
        except (ImportError, ValueError):
            return dev
        if name.isdigit():
            return torch.device("cuda", int(name) % torch.cuda.device_count())
    return dev


def _unpacked(payload, cfg) -> methods.Run:
    if isinstance(payload, methods.Run):
        return payload
    d = torch.load(io.BytesIO(payload), weights_only=True)
    return methods.Run(method=d["method"], config=asdict(cfg), steps=d["steps"], frames=d["frames"], final=d["final"],
                       history=d["history"], state=d["state"], seconds=d["seconds"], device=d["device"])


def cached_all(cfgs: list, device=None, folder: Path | None = None, labels: list[str | None] | None = None,
               workers: int | None = None, executor=None) -> list[methods.Run]:
    """``[cached(c) for c in cfgs]``, with the runs missing from the cache trained through ``executor``
    (default ``chartlib.runs.executors.current``: ``$CHARTLIB_EXECUTOR``, else worker processes when
    ``workers`` is more than 1, else this process), ``workers`` at once (default
    ``chartlib.runs.workers.default_workers``; one per GPU off the CPU).

    Every worker uses this process's torch thread count, so every run is bit for bit the run trained
    alone.  This process saves each run as it arrives and notes it in the ledger as trained.  A run
    another process is training in the same cache folder (``chartlib.runs.claims``) is waited for and
    loaded, not trained again.  A run that fails (``TrainingDiverged``) raises its own error here and
    stops the workers: the runs that had finished are cached, the failed and unfinished ones are not."""
    from chartlib.core.nets import pick_device

    from . import executors
    from . import workers as pools
    folder = cache_dir() if folder is None else Path(folder)
    labels = list(labels) if labels is not None else [None] * len(cfgs)
    if len(labels) != len(cfgs):
        raise ValueError(f"labels has {len(labels)} entries for {len(cfgs)} configs")
    dev = pick_device() if device is None else torch.device(device)
    workers = pools.default_workers(dev) if workers is None else check_int("workers", workers, 1, 256)
    keys = [run_key(c) for c in cfgs]
    found: dict[str, methods.Run] = {}
    missing: dict[str, tuple] = {}          # key -> (key, cfg, label) of its first config
    for c, k, label in zip(cfgs, keys, labels):
        if k not in found and k not in missing:
            run = _lookup(c, k, folder, stacklevel=4)
            if run is None:
                missing[k] = (k, c, label)
            else:
                found[k] = run
    if missing:
        executor = executor or executors.chosen_by_user() or _default_executor(dev, workers, len(missing))
        # a worker picks its own device when none was asked for; here only the client's choice counts
        target = str(dev) if executor.in_process or device is not None or executor.name != "dask" else None
        found.update(_train_missing(list(missing.values()), target, folder, executor))
    out, handed = [], set()
    for c, k, label in zip(cfgs, keys, labels):
        if k in found and k not in handed:
            run = found[k]
            if run.cached:
                _note(k, run, "loaded")
            handed.add(k)
            out.append(run)
        else:                     # a config listed twice: its second copy comes from the cache
            out.append(cached(c, device=dev, folder=folder, label=label))
    return out


def _default_executor(dev: torch.device, workers: int, missing: int):
    """``$CHARTLIB_EXECUTOR``'s executor for ``missing`` runs: worker processes only as many as there
    are runs (one run trains here), one per GPU for a local cluster, one at a time off the CPU otherwise."""
    from . import executors
    chosen = executors.setting()
    local_cluster = chosen is not None and chosen.kind == "dask-local"
    if dev.type != "cpu":
        workers = max(1, torch.cuda.device_count()) if local_cluster and dev.type == "cuda" else 1
    elif not local_cluster:          # a cluster is kept between batches: its size does not follow theirs
        workers = min(workers, missing)
    return executors.current(workers, torch.get_num_threads())


def _name(cfg, label) -> str:
    return label or f"{_method_name(cfg)} seed {cfg.schedule.seed}"


def _sort_claimed(job: tuple, claim, folder: Path, mine: dict, done: dict):
    """A job this process has claimed: loaded into ``done`` if another process stored it since the first
    lookup (its claim released), else into ``mine`` to train.  A damaged entry was reported by that
    lookup already, so here it only means "train it"."""
    key, cfg, _ = job
    try:
        run = load(key, folder, cfg)
    except CacheError:
        run = None
    if run is None:
        mine[key] = (job, claim)
    else:
        claim.release()
        done[key] = run


def _train_missing(jobs: list[tuple], device: str | None, folder: Path, executor) -> dict[str, methods.Run]:
    """Train the ``(key, cfg, label)`` jobs, each key claimed first: a key another process holds is
    waited for and then loaded from the cache (or trained here, if that process did not store it)."""
    from . import claims
    if _unwritable(folder, [k for k, _, _ in jobs], stacklevel=5):
        return _collect(jobs, device, folder, executor, {}, store=False)
    done: dict[str, methods.Run] = {}
    pending = jobs
    while pending:
        mine, theirs = {}, []
        for job in pending:
            claim = claims.try_claim(folder, job[0])
            if claim is None:
                theirs.append(job)
            else:
                _sort_claimed(job, claim, folder, mine, done)
        if not mine and theirs:            # all that is left trains elsewhere: wait for the first
            job = theirs.pop(0)
            print(f"waiting for {_name(job[1], job[2])}: another process is training it into {folder}", flush=True)
            _sort_claimed(job, claims.wait_claim(folder, job[0]), folder, mine, done)
        held = {k: claim for k, (_, claim) in mine.items()}
        try:
            done.update(_collect([job for job, _ in mine.values()], device, folder, executor, held, store=True))
        finally:
            for claim in held.values():
                claim.release()
        pending = [job for job in theirs if job[0] not in done]
    return done


def _lost(names: list[str], trained: dict, folder: Path, executor) -> str:
    return (f"a worker process died (killed, or out of memory) while these runs were training or waiting: "
            f"{', '.join(names)}. The {len(trained)} run(s) that had finished are cached in {folder}; run it "
            f"again to train the rest ({executor.name}; CHARTLIB_EXECUTOR=inline trains one run at a time, in "
            f"this process)")


def _collect(jobs: list[tuple], device: str | None, folder: Path, executor, held: dict, store: bool
             ) -> dict[str, methods.Run]:
    """Train ``(key, cfg, label)`` jobs through ``executor``; as each arrives, save it (``store``), release
    its claim (``held``), note it and report it.  An error or an interrupt stops the executor's work."""
    if not jobs:
        return {}
    code, threads = code_version(), torch.get_num_threads()
    arglists = [(cfg, device, label, threads, code, executor.in_process) for _, cfg, label in jobs]
    bar = None
    if not executor.in_process:
        if os.environ.get("CHARTLIB_PROGRESS", "bar") == "bar":            # interactive: one bar over the runs
            from tqdm.std import tqdm
            bar = tqdm(total=len(jobs), desc=f"{len(jobs)} runs in {executor.workers} workers", unit="run",
                       file=sys.stdout)
        else:
            print(f"training {len(jobs)} runs in {executor.workers} worker processes")
    trained = {}

    def lost(indices):
        return _lost([_name(jobs[i][1], jobs[i][2]) for i in indices], trained, folder, executor)
    try:
        for i, payload in executor.collect(_train_job, arglists, lost):
            k, cfg, label = jobs[i]
            run = _unpacked(payload, cfg)
            if store:
                save(run, k, folder, cfg, stacklevel=5)
            if k in held:
                held.pop(k).release()
            _note(k, run, "trained")
            trained[k] = run
            if bar is not None:
                bar.set_postfix_str(f"{_name(cfg, label)}: {run.seconds:.1f} s", refresh=False)
                bar.update(1)
            elif not executor.in_process:
                print(f"trained {_name(cfg, label)}: {cfg.schedule.steps} steps in {run.seconds:.1f} s (worker)")
    except BaseException:
        executor.abort()         # a failure or an interrupt: stop the workers; what they had is not cached
        raise
    finally:
        if bar is not None:
            bar.close()
    return trained
