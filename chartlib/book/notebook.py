"""The two calls every chapter notebook makes: ``setup`` at the top, ``save`` at the end."""
from __future__ import annotations

from dataclasses import asdict

from chartlib.chapters.profiles import resolve
from chartlib.common.paths import book_build, write_metrics
from chartlib.core.nets import pick_device

from .timings import expected_time


def setup(profiles: dict, profile: str, device: str = "auto", *, stem: str | None = None, **overrides):
    """The profile's settings with every override that is not None applied (validated: a bad value
    stops here with a message naming it), and the device; both printed, and (given the notebook's
    ``stem``, outside the book build) the time the chapter is expected to take, before anything
    trains.  Returns (settings, device)."""
    dev = pick_device(device)
    settings = resolve(profiles, profile, dev, **overrides)
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
