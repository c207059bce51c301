"""A progress report for one training run: a tqdm bar when run interactively, one summary line per run
under the book build (``CHARTLIB_PROGRESS`` set to anything other than ``bar``)."""
from __future__ import annotations

import os
import sys


class Progress:
    """A tqdm bar when run interactively; one summary line per run under the book build
    (``CHARTLIB_PROGRESS`` other than ``bar``)."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, total, 0
        self.bar = None
        if os.environ.get("CHARTLIB_PROGRESS", "bar") == "bar":
            # tqdm's text bar, in notebooks too: its notebook widget is saved as a reference to a widget
            # model the saved notebook does not hold ("Error displaying widget: model not found", once
            # per run, on reopening).  On stdout: Jupyter shows stderr on red.
            from tqdm.std import tqdm
            self.bar = tqdm(total=total, desc=label, leave=False, file=sys.stdout)

    def update(self, step: int, loss: float):
        if self.bar is not None:
            self.bar.update(step - self.done)
            self.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        self.done = step

    def close(self, seconds: float):
        if self.bar is not None:
            self.bar.close()
        print(f"trained {self.label}: {self.total} steps in {seconds:.1f} s")
