"""The two calls every chapter notebook makes: ``setup`` at the top, ``save`` at the end."""
from __future__ import annotations

from dataclasses import asdict

from .nets import pick_device
from .params import resolve
from .paths import write_metrics


def setup(profiles: dict, profile: str, device: str = "auto", **overrides):
    """The profile's settings with every override that is not None applied (validated: a bad value
    stops here with a message naming it), and the device; both printed.  Returns (settings, device)."""
    settings = resolve(profiles, profile, **overrides)
    dev = pick_device(device)
    print(f"profile {profile}; training on {dev}; {settings}")
    return settings, dev


def save(stem: str, profile: str, device, settings, record: dict):
    """Write the chapter's measurements (``record``: JSON-ready, with ``wall_seconds``) to
    ``_build/metrics/<stem>.json`` with its profile, device and settings.  Returns nothing, so that a
    notebook's last line does not print the path."""
    path = write_metrics(stem, {"profile": profile, "device": str(device), "settings": asdict(settings), **record})
    print(f"measurements written to {path.name}; chapter took {record['wall_seconds']:.1f} s")
