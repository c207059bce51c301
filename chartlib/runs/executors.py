"""Where the runs missing from the cache train: one interface shaped like ``concurrent.futures.Executor``
(``submit`` gives a future; ``collect`` gives results as they finish) with three places behind it.

- ``inline``: in this process, one run after another;
- ``processes``: worker processes on this machine (``chartlib.runs.workers``' pool);
- ``dask-local`` / ``dask://host:port`` / a ``distributed.Client`` you made: a Dask cluster, started
  here (a ``LocalCluster``) or reached at its scheduler's address (say a dask-jobqueue SLURM cluster).

``$CHARTLIB_EXECUTOR`` picks one (``python -m chartlib.book --executor`` sets it for the notebooks);
unset, runs train in worker processes when there is more than one worker, else in this process.
Workers only train and return each run as bytes: this process collects, caches and reports them
(``chartlib.runs.cache``), so a cluster needs no filesystem shared with it.
"""
from __future__ import annotations

import atexit
import concurrent.futures
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from . import workers as pools

EXECUTOR_ENV = "CHARTLIB_EXECUTOR"
CHOICES = "inline, processes, dask-local or dask://host:port"
CONNECT_SECONDS = 10.0     # how long a scheduler address may take to answer
POLL_SECONDS = 0.2         # how often a wait for results checks that the workers are alive


@dataclass(frozen=True)
class Setting:
    """A parsed ``$CHARTLIB_EXECUTOR``: ``kind`` is inline, processes, dask-local or dask; ``address``
    the scheduler's (``tcp://host:port``) for dask."""

    kind: str
    address: str | None = None


def parse(text: str) -> Setting:
    """The executor named by ``text``; a ValueError naming the variable and the choices otherwise."""
    value = text.strip()
    if value in ("inline", "processes", "dask-local"):
        return Setting(value)
    for scheme in ("dask://", "tcp://"):
        if value.startswith(scheme):
            host, _, port = value[len(scheme):].rpartition(":")
            if host and port.isdigit() and 0 < int(port) < 65536:
                return Setting("dask", f"tcp://{host}:{port}")
    raise ValueError(f"{EXECUTOR_ENV}={text!r} is not allowed: {EXECUTOR_ENV} must be {CHOICES} "
                     f"(the address of a running Dask scheduler, e.g. dask://127.0.0.1:8786)")


def setting() -> Setting | None:
    """``$CHARTLIB_EXECUTOR`` parsed, or None when unset or empty."""
    text = os.environ.get(EXECUTOR_ENV, "").strip()
    return parse(text) if text else None


class Executor:
    """What ``chartlib.runs.cache`` trains through.  ``in_process``: runs train in this process (their
    own progress bars show); ``workers``: how many train at once."""

    name = "executor"
    in_process = False
    workers = 1
    closed = False

    def submit(self, fn: Callable, *args):
        """Start ``fn(*args)``; a future with ``done()``, ``result()`` and ``cancel()``."""
        raise NotImplementedError

    def lost(self) -> bool:
        """Whether a worker died, so that a run submitted to it will never report back."""
        return False

    def collect(self, fn: Callable, arglists: list[tuple], lost_message: Callable[[list[int]], str]
                ) -> Iterator[tuple[int, object]]:
        """``(i, fn(*arglists[i]))`` as each finishes.  A run's error is raised as it is; a dead worker
        raises ``RunLost(lost_message(indices not yet returned))`` within ``POLL_SECONDS``."""
        pending = {self.submit(fn, *args): i for i, args in enumerate(arglists)}
        while pending:
            finished = [f for f in pending if f.done()]
            if not finished:
                if self.lost():
                    raise pools.RunLost(lost_message(sorted(pending.values())))
                time.sleep(POLL_SECONDS)       # short sleeps keep the wait interruptible
                continue
            for f in finished:
                i = pending.pop(f)
                yield i, self._result(f, i, lost_message)

    def _result(self, future, i: int, lost_message):
        return future.result()

    def abort(self):
        """Stop what is still training (after an error or an interrupt)."""

    def close(self):
        """Release the workers."""

    def process_ids(self) -> list[int]:
        """The local processes this executor started (none for a remote cluster)."""
        return []


class Inline(Executor):
    """One run after another in this process; ``collect`` trains each only when it is asked for."""

    name = "inline"
    in_process = True

    def submit(self, fn, *args):
        future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args))
        except Exception as e:
            future.set_exception(e)
        return future

    def collect(self, fn, arglists, lost_message):
        for i, args in enumerate(arglists):
            yield i, fn(*args)


class Processes(Executor):
    """Spawned worker processes on this machine (``chartlib.runs.workers.worker_pool``), each with
    ``threads`` torch threads; a dead worker is noticed by ``lost``.

    The local default, not a Dask ``LocalCluster``: on this project's 2-core machine the cluster took
    5.4 s to start against the pool's 3.6 s and 1.6 s to close against 0.1 s, trained 16 toy runs in
    42.7 s against 32.0 s (``python -m benchmarks --only executors``), and the ci chapters 1-4 in 508 s
    against 267 s, with every measurement identical."""

    name = "processes"

    def __init__(self, workers: int, threads: int):
        self.workers, self.threads = workers, threads

    def submit(self, fn, *args):
        future = concurrent.futures.Future()
        pools.worker_pool(self.workers, self.threads).apply_async(
            fn, args, callback=future.set_result, error_callback=future.set_exception)
        return future

    def lost(self):
        return bool(pools.lost_workers())

    def abort(self):
        pools.close_pool()

    close = abort

    def process_ids(self):
        return [p.pid for p in pools.worker_processes()]


class Dask(Executor):
    """A ``distributed.Client``'s cluster.  ``cluster``: a ``LocalCluster`` this executor started and
    stops (an interrupt stops its workers, whatever they were training); without one, an interrupt
    cancels the runs not yet started and the cluster stays."""

    name = "dask"

    def __init__(self, client, cluster=None):
        self.client, self.cluster = client, cluster
        self._submitted: list = []

    @property
    def workers(self) -> int:
        return max(1, sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values()))

    def submit(self, fn, *args):
        future = self.client.submit(fn, *args, pure=False)
        self._submitted = [f for f in self._submitted if not f.done()] + [future]
        return future

    def _result(self, future, i, lost_message):
        from distributed import KilledWorker
        try:
            return future.result()
        except KilledWorker:          # the scheduler gave up after its retries (allowed-failures)
            raise pools.RunLost(lost_message([i])) from None

    def abort(self):
        if self.cluster is not None:
            self.close()
        elif self._submitted:
            self.client.cancel(self._submitted)
            self._submitted = []

    def close(self):
        self.closed = True
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def process_ids(self):
        if self.cluster is None:
            return []
        pids = [w.process.pid for w in self.cluster.workers.values() if getattr(w, "process", None) is not None]
        return sorted({p for p in pids if p is not None} | set(self.client.run(os.getpid).values()))


def local_cluster(workers: int, threads: int) -> Dask:
    """A ``LocalCluster`` of ``workers`` processes on loopback, one run at a time each (``threads``
    torch threads per run are set by the run itself)."""
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=":0", silence_logs=40)     # any free port, none fixed
    return Dask(Client(cluster), cluster)


def connect(address: str, timeout: float | None = None) -> Dask:
    """A client of the Dask scheduler at ``address`` (``tcp://host:port``), or an error naming it."""
    from distributed import Client
    timeout = CONNECT_SECONDS if timeout is None else timeout
    try:
        return Dask(Client(address, timeout=timeout))
    except (OSError, TimeoutError) as e:
        raise ConnectionError(
            f"no Dask scheduler answered at {address} within {timeout:g} s ({EXECUTOR_ENV}=dask://"
            f"{address.removeprefix('tcp://')}): {e}. Start one there (`dask scheduler`, then "
            f"`dask worker {address}` on each machine, or a dask-jobqueue cluster) and use the address it "
            f"prints, or set {EXECUTOR_ENV}=processes to train on this machine") from None


def make(chosen: Setting | None, workers: int, threads: int) -> Executor:
    """The executor for a setting (None: processes with more than one worker, else inline)."""
    kind = chosen.kind if chosen is not None else ("processes" if workers > 1 else "inline")
    if kind == "inline" or (kind == "processes" and workers == 1):
        return Inline()
    if kind == "processes":
        return Processes(workers, threads)
    if kind == "dask-local":
        return local_cluster(workers, threads)
    return connect(chosen.address)


_CURRENT: tuple | None = None      # (key, executor) kept for the next batch


def current(workers: int, threads: int) -> Executor:
    """The executor ``$CHARTLIB_EXECUTOR`` names, kept between batches (a cluster starts once per
    process, or once per chapter: ``close_current``)."""
    global _CURRENT
    chosen = setting()
    key = (chosen, workers, threads)
    if _CURRENT is not None and _CURRENT[0] == key and not _CURRENT[1].closed:    # an interrupt closes a local cluster
        return _CURRENT[1]
    close_current()
    executor = make(chosen, workers, threads)
    if not executor.in_process:
        _CURRENT = (key, executor)
    return executor


_USER: Executor | None = None


def use(executor_or_client) -> Executor:
    """Train through ``executor_or_client`` from now on (an ``Executor`` or a ``distributed.Client``,
    e.g. of a dask-jobqueue cluster); ``use(None)`` goes back to ``$CHARTLIB_EXECUTOR``."""
    global _USER
    ex = executor_or_client
    _USER = ex if ex is None or isinstance(ex, Executor) else Dask(ex)
    return _USER


def chosen_by_user() -> Executor | None:
    return _USER


def close_current():
    """Close the executor ``current`` started, if any (a user's, from ``use``, stays)."""
    global _CURRENT
    if _CURRENT is not None:
        executor, _CURRENT = _CURRENT[1], None
        executor.close()


atexit.register(close_current)
pools.CHAPTER_END.append(close_current)      # a chapter's local cluster ends with the chapter, as its pool does
