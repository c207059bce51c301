"""The build's timing record: per notebook its execution time, the runs it trained or took from the
cache, its cold time (what a fresh machine pays), and the machine; and the expected times notebooks
print before they train, read from that record or from ``expected_times.json`` (written from a
record by ``python -m chartlib.book.timings --publish``)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from chartlib.common.paths import ROOT, atomic_write, build_dir

EXPECTED = Path(__file__).with_name("expected_times.json")
PAGES = ("render", "06_summary", "build_record")   # timed steps that are not chapters: no expected time


def commit() -> str | None:
    """The repository's commit (with ``+`` when the work tree has changes), or None outside git."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+" if dirty else "")


def describe_machine() -> dict:
    """What the timings were measured on: CPU model, cores, torch, GPU if any."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "gpu": gpu, "torch": torch.__version__, "python": platform.python_version(),
            "os": platform.platform(terse=True),
            "description": f"{cores} cores of {cpu}" + (f", {gpu}" if gpu else ", no GPU")}


# the packages whose versions decide what the pages show: the numbers (torch), the rendering and the figures
PACKAGES = ("torch", "numpy", "jupyter-book", "sphinx", "sphinxcontrib-bibtex", "papermill", "plotly")


def versions() -> dict[str, str | None]:
    """Python's version and each of ``PACKAGES``'s (None for one that is not installed)."""
    import platform
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def ledger_path(stage_book: Path, stem: str) -> Path:
    """Where the run cache notes, one JSON line per run, what a notebook's execution trained or loaded
    (``$CHARTLIB_RUN_LEDGER``, see ``chartlib.runs.cache``)."""
    return stage_book / f".{stem}.runs.jsonl"


def count_runs(ledger: Path, seen: set[str]) -> tuple[dict, set[str]]:
    """From a notebook's run ledger: how many runs it trained, and the runs it loaded that neither it
    nor an earlier notebook of this build (``seen``) trained or used, with their recorded training
    seconds: on a fresh machine this notebook would train those itself.  Also returns every run key
    the notebook used, for the notebooks after it."""
    entries = [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()] if ledger.exists() else []
    trained = {e["key"] for e in entries if e["event"] == "trained"}
    loaded = {e["key"]: e["seconds"] for e in entries if e["event"] == "loaded"}
    credited = {k: v for k, v in loaded.items() if k not in seen and k not in trained}
    runs = {"trained": sum(e["event"] == "trained" for e in entries), "cached": len(credited),
            "cached_train_seconds": round(sum(credited.values()), 1)}
    return runs, set(loaded) | trained


def record_timing(build_dir: Path, profile: str, stem: str, seconds: float, state: str, runs: dict | None = None):
    """Keep ``_build/timings/<profile>.json`` current after every notebook.

    ``notebook_seconds`` is each notebook's last execution (one that was up to date keeps it);
    ``runs`` how many runs that execution trained, and how many it loaded that an earlier build had
    trained (see ``count_runs``), with their recorded training seconds; ``cold_seconds`` what a fresh
    machine pays: the execution time plus those training seconds (measured outright when no run came
    from an earlier build, ``cold_estimated`` says which)."""
    path = build_dir / "timings" / f"{profile}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = {}
    record.setdefault("profile", profile)
    record["commit"] = commit()
    record["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")   # the record's last update
    for key in ("notebook_seconds", "cold_seconds", "cold_estimated", "runs", "state"):
        record.setdefault(key, {})
    record["state"][stem] = state   # "executed" by this build, or "up to date" (an earlier build's execution kept)
    if state == "executed" or stem not in record["notebook_seconds"]:
        record["notebook_seconds"][stem] = seconds
        record["machine"] = describe_machine()
        record["versions"] = versions()
        runs = runs or {"trained": 0, "cached": 0, "cached_train_seconds": 0.0}
        record["runs"][stem] = runs
        record["cold_seconds"][stem] = round(seconds + runs["cached_train_seconds"], 1)
        record["cold_estimated"][stem] = runs["cached"] > 0
    record["total_seconds"] = round(sum(record["notebook_seconds"].values()), 1)
    record["cold_total_seconds"] = round(sum(record["cold_seconds"].values()), 1)
    atomic_write(path, json.dumps(record, indent=1).encode())


# ---------------------------------------------------------------------------------------------
# expected times, for the notebooks' first lines

def _kind(gpu) -> str:
    return "cuda" if gpu else "cpu"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def expected_seconds(stem: str, profile: str, device) -> tuple[float, str] | None:
    """How long the notebook ``stem`` takes with ``profile`` on this kind of machine, and where that
    number comes from: the cold time of the last build in ``_build`` when it ran on the same kind of
    device (a GPU, or none), else ``expected_times.json``; None when neither has it."""
    gpu = str(device).startswith("cuda")
    try:
        record = json.loads((build_dir() / "timings" / f"{profile}.json").read_text())
        machine = record.get("machine", {})
        if stem in record.get("cold_seconds", {}) and bool(machine.get("gpu")) == gpu:
            where = f"measured by the last build here, on {machine.get('description', '?')}"
            return record["cold_seconds"][stem], where
    except (OSError, ValueError):
        pass
    try:
        kind = json.loads(EXPECTED.read_text()).get(_kind(gpu), {})
    except (OSError, ValueError):
        return None
    times = kind.get("profiles", {}).get(profile, {})
    if stem in times:
        where = f"measured on {kind['description']}" + (f" at commit {kind['commit']}" if kind.get("commit") else "")
        return times[stem], where
    return None


def expected_time(stem: str, profile: str, device) -> str:
    """One sentence for the top of a notebook: how long it will take, and how to get the fast version."""
    found = expected_seconds(stem, profile, device)
    if found is None:
        text = f"This chapter has no measured time for profile {profile} on {device}."
    else:
        seconds, source = found
        text = (f"Expected time for this chapter with profile {profile}: about {_duration(seconds)} on a fresh "
                f"machine ({source}; runs already in the run cache take no time).")
    if profile != "ci":
        fast = expected_seconds(stem, "ci", device)
        text += (" For the fast version" + (f" (about {_duration(fast[0])})" if fast else "")
                 + ', set profile = "ci" in the parameters cell and run all cells again.')
    return text


def publish(record_path: Path, target: Path = EXPECTED) -> dict:
    """Copy a build's cold times per chapter (``_build/timings/<profile>.json``) into ``target``, under
    the kind of machine it ran on, with that machine's description and the build's commit."""
    record = json.loads(Path(record_path).read_text())
    try:
        expected = json.loads(target.read_text())
    except (OSError, ValueError):
        expected = {}
    machine = record.get("machine", {})
    kind = expected.setdefault(_kind(machine.get("gpu")), {"profiles": {}})
    kind["description"] = machine.get("description", "machine not recorded")
    kind["commit"] = record.get("commit")
    kind["profiles"][record["profile"]] = {stem: seconds for stem, seconds in record["cold_seconds"].items()
                                           if stem not in PAGES}
    atomic_write(target, (json.dumps(expected, indent=1, sort_keys=True) + "\n").encode())
    return expected


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chartlib.book.timings",
                                 description="Publish a build's cold times as the notebooks' expected times.")
    ap.add_argument("--publish", nargs="+", metavar="RECORD", required=True,
                    help="timing records to publish, e.g. _build/timings/full.json _build/timings/ci.json")
    args = ap.parse_args(argv)
    for path in args.publish:
        publish(Path(path))
        print(f"published {path} into {EXPECTED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
