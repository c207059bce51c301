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


def _third_party_imports(folder: Path) -> set[str]:
    import ast
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "chartlib"}


def test_every_package_chartlib_imports_is_a_requirement():
    # a package present only as another one's dependency can vanish from a fresh install
    from importlib.metadata import packages_distributions
    reqs = {re.split(r"[<>=~!\[ ;#]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")
            for line in (ROOT / "requirements.txt").read_text().splitlines() if line.strip() and line[0] != "#"}
    providers = packages_distributions()
    missing = {}
    for module in sorted(_third_party_imports(ROOT / "chartlib")):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        if not dists & reqs:
            missing[module] = sorted(dists) or ["not installed"]
    assert not missing, f"chartlib imports packages that requirements.txt does not list: {missing}"
