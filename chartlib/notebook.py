"""The two calls every chapter notebook makes: ``setup`` at the top, ``save`` at the end."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .nets import pick_device
from .params import resolve
from .paths import book_build, build_dir, write_metrics

# Cold times (seconds a fresh machine pays, run cache empty) per notebook, for when no build on this
# machine has recorded its own (``_build/timings/<profile>.json``).  CPU: 2 cores of an AMD EPYC, no
# GPU (stop 17, ``python -m chartlib.build`` with an empty run cache, the toy chapters' runs in two
# worker processes; full: the classifier already trained; ci: the evaluation classifier trained in it).
# GPU: one H200, stop 15, the code before the drift-field and bf16 changes (full profile, chapters 1 and
# 2 only; its MNIST time, 88 s, was for the chapter's stop-15 sizes, 7 runs against 42 now, so it is not
# shown; the ci profile was not run on a GPU).
MEASURED = {
    "cpu": {"description": "2 CPU cores (AMD EPYC), no GPU",
            "full": {"01_mode_collapse": 180, "02_chart_transport": 118, "03_space_filling": 23,
                     "04_stochastic_encoding": 59, "05_mnist": 1268},
            "ci": {"01_mode_collapse": 25, "02_chart_transport": 21, "03_space_filling": 8,
                   "04_stochastic_encoding": 20, "05_mnist": 75}},
    "cuda": {"description": "one NVIDIA H200",
             "full": {"01_mode_collapse": 179, "02_chart_transport": 185}},
}


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def expected_seconds(stem: str, profile: str, device) -> tuple[float, str] | None:
    """How long the notebook ``stem`` takes with ``profile`` on this kind of machine, and where that
    number comes from: the cold time of the last build in ``_build`` when it ran on the same kind of
    device (a GPU, or none), else the measured table above; None when neither has it."""
    gpu = str(device).startswith("cuda")
    try:
        record = json.loads((build_dir() / "timings" / f"{profile}.json").read_text())
        machine = record.get("machine", {})
        if stem in record.get("cold_seconds", {}) and bool(machine.get("gpu")) == gpu:
            return record["cold_seconds"][stem], f"measured by the last build here, on {machine.get('description', '?')}"
    except (OSError, ValueError):
        pass
    kind = MEASURED["cuda" if gpu else "cpu"]
    if stem in kind.get(profile, {}):
        return kind[profile][stem], f"measured on {kind['description']}"
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


def setup(profiles: dict, profile: str, device: str = "auto", *, stem: str | None = None, **overrides):
    """The profile's settings with every override that is not None applied (validated: a bad value
    stops here with a message naming it), and the device; both printed, and (given the notebook's
    ``stem``, outside the book build) the time the chapter is expected to take, before anything
    trains.  Returns (settings, device)."""
    settings = resolve(profiles, profile, **overrides)
    dev = pick_device(device)
    print(f"profile {profile}; training on {dev}; {settings}")
    if stem is not None and not book_build():
        print(expected_time(stem, profile, dev))
    return settings, dev


def save(stem: str, profile: str, device, settings, record: dict):
    """Write the chapter's measurements (``record``: JSON-ready, with ``wall_seconds``) to
    ``_build/metrics/<stem>.json`` with its profile, device and settings.  Returns nothing, so that a
    notebook's last line does not print the path."""
    path = write_metrics(stem, {"profile": profile, "device": str(device), "settings": asdict(settings), **record})
    print(f"measurements written to {path.name}; chapter took {record['wall_seconds']:.1f} s")
