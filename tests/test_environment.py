"""What the README promises is installed by requirements.txt really is in the test environment."""
from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_jupyterlab_is_required_and_installed():
    # README: ".venv/bin/jupyter lab book/" -- so `make book` / `make test` must install JupyterLab.
    reqs = (ROOT / "requirements.txt").read_text().splitlines()
    assert any(re.match(r"jupyterlab\s*(>=|==|~=|$)", line.strip()) for line in reqs), \
        "requirements.txt does not list jupyterlab, yet the README tells readers to run `jupyter lab book/`"
    assert importlib.util.find_spec("jupyterlab") is not None, \
        "jupyterlab is not installed in this environment: run `make book` (or pip install -r requirements.txt)"
    bindir = Path(sys.executable).parent
    assert (bindir / "jupyter-lab").exists() or shutil.which("jupyter-lab"), \
        f"no jupyter-lab command beside {sys.executable}"
