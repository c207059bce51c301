"""Build the book: execute the output-free notebooks with papermill into a staging copy, then
render that copy with Jupyter Book (``execute_notebooks: off``) into ``_build/html``.

    python -m chartlib.book --profile full        # the published book (default)
    python -m chartlib.book --profile ci          # every chapter at CI sizes, in minutes

A notebook whose source, profile and chartlib code are unchanged since its last successful
execution is not executed again, and trained runs come from the run cache, so an interrupted build
resumes where it stopped.  Static assets (plotly.js, MathJax) are served from the site itself.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from chartlib.chapters.profiles import PROFILES
from chartlib.common.paths import ROOT

from .check import check as check_site
from .timings import count_runs, ledger_path, record_timing

MATHJAX = "mathjax@3.2.2"   # MathJax 3 is what Sphinx's mathjax extension targets


class BuildError(RuntimeError):
    pass


def _sha(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def chartlib_version() -> str:
    """A hash of every chartlib source file: a notebook is executed again when any of them changes."""
    h = hashlib.sha256()
    root = ROOT / "chartlib"
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def notebooks() -> list[Path]:
    """The notebooks listed in _toc.yml, in book order."""
    from chartlib.chapters.registry import toc_files

    return [path for f in toc_files() if (path := ROOT / f"{f}.ipynb").exists()]


def execute(src: Path, stage_book: Path, profile: str, build_dir: Path) -> str:
    """Execute one notebook into the staging copy unless an identical execution is already there."""
    import papermill

    out = stage_book / src.name
    stamp_path = stage_book / f".{src.stem}.stamp.json"
    stamp = {"source": _sha(src), "profile": profile, "chartlib": chartlib_version()}
    metrics = build_dir / "metrics" / f"{src.stem}.json"
    # a page built from the other chapters' measurements and the build's timings (the summary) takes
    # seconds and is stale whenever any of them changes: always execute it
    reads_others = json.loads(src.read_text()).get("metadata", {}).get("chartlib", {}).get("reads_metrics", False)
    if out.exists() and stamp_path.exists() and metrics.exists() and not reads_others:
        # the measurements must still be the ones this execution wrote: a notebook run by hand (say
        # with another profile) rewrites the file, and then the chapter is executed again
        try:
            if json.loads(stamp_path.read_text()) == {**stamp, "metrics": _sha(metrics)}:
                return "up to date"
        except ValueError:
            pass
    stamp_path.unlink(missing_ok=True)
    partial = stage_book / f"{src.stem}.partial.ipynb"
    ledger = ledger_path(stage_book, src.stem)
    ledger.unlink(missing_ok=True)
    os.environ["CHARTLIB_RUN_LEDGER"] = str(ledger)
    try:
        papermill.execute_notebook(str(src), str(partial), parameters={"profile": profile}, cwd=str(src.parent),
                                   kernel_name="python3", progress_bar=False, log_output=False)
    except papermill.PapermillExecutionError as e:
        raise BuildError(f"{src.name} failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
                         f"The partly executed notebook is {partial}") from None
    tidy(partial, {"profile": profile})
    os.replace(partial, out)
    if not metrics.exists():
        raise BuildError(f"{src.name} ran but wrote no measurements to {metrics}")
    stamp_path.write_text(json.dumps({**stamp, "metrics": _sha(metrics)}))
    return "executed"


# the lines ``chartlib.common.progress.Progress`` prints when a run finishes under the build, and
# ``chartlib.runs.cache.cached_all`` when runs train in worker processes
PROGRESS_LINE = re.compile(r"trained .+: \d+ steps in [\d.]+ s( \(worker\))?|training \d+ runs in \d+ worker processes")


def show_parameters(source: str, parameters: dict) -> str:
    """The author's parameters cell with the values the build injected, comments kept in place."""
    lines = source.splitlines(keepends=True)
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in parameters and node.value.lineno == node.value.end_lineno):
            continue
        value = parameters[node.targets[0].id]
        literal = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)
        line = lines[node.value.lineno - 1].encode()   # ast offsets count UTF-8 bytes
        start, end = node.value.col_offset, node.value.end_col_offset
        rest = line[end:]
        gap = len(rest) - len(rest.lstrip(b" "))
        if rest.lstrip(b" ").startswith(b"#"):   # keep the comment's column where there is room
            rest = b" " * max(1, gap + (end - start) - len(literal.encode())) + rest.lstrip(b" ")
        lines[node.value.lineno - 1] = (line[:start] + literal.encode() + rest).decode()
    return "".join(lines)


def tidy(path: Path, parameters: dict):
    """Make an executed notebook's page show the parameters and the results, not the build's log.

    The author's ``parameters`` cell shows the values this build used (papermill's
    ``injected-parameters`` cell, which repeats them without comments, is tagged ``remove-cell``),
    and a cell whose standard output is nothing but the one-line-per-run training log is tagged
    ``remove-stdout``.  Tags only hide things in the HTML: the downloadable notebook keeps every cell
    and the whole log.  Any other output, warnings on stderr included, stays on the page."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        if "parameters" in tags:
            cell.source = show_parameters(cell.source, parameters)
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        stdout = "".join(o.get("text", "") for o in cell.get("outputs", [])
                         if o.output_type == "stream" and o.name == "stdout").splitlines()
        if stdout and all(PROGRESS_LINE.fullmatch(line) for line in stdout) and "remove-stdout" not in tags:
            tags.append("remove-stdout")
    nbformat.write(nb, path)


def _mathjax(static: Path):
    """Unpack MathJax's es5 bundle from the npm registry (cached under .cache/vendor)."""
    vendor = ROOT / ".cache" / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    tarballs = sorted(vendor.glob("mathjax-3*.tgz"))
    if not tarballs:
        npm = shutil.which("npm")
        if npm is None:
            raise BuildError("npm is needed once to fetch MathJax (pages must not load it from a CDN): "
                             "install Node.js/npm (Debian: apt-get install -y npm) and build again")
        subprocess.run([npm, "pack", MATHJAX, "--silent", "--pack-destination", str(vendor)], check=True,
                       stdout=subprocess.DEVNULL)
        tarballs = sorted(vendor.glob("mathjax-3*.tgz"))
    target = static / "mathjax"
    if (target / "tex-chtml.js").exists():
        return
    tmp = static / "mathjax.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tarballs[-1]) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("package/es5/") and m.isfile()]
        for m in members:
            m.name = m.name[len("package/es5/"):]
        tar.extractall(tmp, members=members, filter="data")
    os.replace(tmp, target)


def stage_static(stage: Path):
    """plotly.js from the installed plotly package, MathJax from npm, the figures' scripts
    (``figure_data.js`` unpacks their arrays, ``figure_theme.js`` follows light/dark): all served by the site.

    They go to ``vendor/`` (listed in ``html_static_path``), not ``_static/``: Jupyter Book links
    every .js file under ``_static`` into every page, which would load all of MathJax's bundles.
    """
    import plotly

    static = stage / "vendor"
    static.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", static / "plotly.min.js")
    # packed figure arrays; figures in dark mode, without the theme's light card
    for name in ("figure_data.js", "figure_theme.js", "figures.css"):
        shutil.copy2(Path(__file__).with_name(name), static / name)
    _mathjax(static)
    _favicon_ico(stage / "extra")


def _favicon_ico(folder: Path):
    """/favicon.ico at the site root, drawn like book/favicon.svg (two modes).  Browsers ask for it
    on pages without an icon link, such as the index redirect, and log a 404 when it is missing."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    icon = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(icon)
    draw.ellipse((4, 10, 16, 22), fill="#1f77b4")
    draw.ellipse((16, 10, 28, 22), fill="#d62728")
    icon.save(folder / "favicon.ico", sizes=[(32, 32), (16, 16)])


def build(profile: str = "full", output: Path = ROOT, only: list[str] | None = None) -> Path:
    if profile not in PROFILES:
        raise BuildError(f"profile={profile!r} is not allowed: choose one of {', '.join(PROFILES)}")
    output = Path(output).resolve()
    build_dir, stage = output / "_build", output / ".stage"
    os.environ["CHARTLIB_BUILD_DIR"] = str(build_dir)   # notebooks write their metrics JSON here
    os.environ["CHARTLIB_PROGRESS"] = "line"            # one line per training run in executed notebooks
    os.environ["CHARTLIB_BOOK_BUILD"] = "1"             # widgets give way to static figures (chartlib.report.explorer)
    # OpenMP threads that spin while waiting make torch many times slower whenever anything else
    # runs on a small machine; passive waiting costs nothing measurable when the machine is idle.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    stage_book = stage / "book"
    stage_book.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy2(ROOT / name, stage / name)
    for extra in [*(ROOT / "book").glob("*.md"), ROOT / "book" / "favicon.svg"]:
        shutil.copy2(extra, stage_book / extra.name)
    total = time.perf_counter()
    timings, seen = {}, set()   # seen: run keys used by the notebooks before this one
    for nb in notebooks():
        if only and nb.stem not in only:
            seen |= count_runs(ledger_path(stage_book, nb.stem), seen)[1]   # its runs count as used before
            continue
        t = time.perf_counter()
        print(f"[book] {nb.name}: executing ({profile})", flush=True)
        state = execute(nb, stage_book, profile, build_dir)
        timings[nb.stem] = round(time.perf_counter() - t, 1)
        runs, keys = count_runs(ledger_path(stage_book, nb.stem), seen)
        seen |= keys
        record_timing(build_dir, profile, nb.stem, timings[nb.stem], state, runs if state == "executed" else None)
        print(f"[book] {nb.name}: {state} in {timings[nb.stem]} s", flush=True)
    stage_static(stage)
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(stage), "--path-output", str(output)]
    print("[book] rendering with Jupyter Book", flush=True)
    t_render = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"jupyter-book failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    record_timing(build_dir, profile, "render", round(time.perf_counter() - t_render, 1), "executed")
    html = build_dir / "html"
    for problem in check_site(html):   # pages over the size bound, broken internal links (tests fail on them)
        print(f"[book] warning: {problem}", flush=True)
    print(f"[book] done in {time.perf_counter() - total:.0f} s: open {html / 'index.html'}", flush=True)
    return html


def use_executor(text: str):
    """Check an executor setting at the top (a scheduler address must answer) and hand it to the
    notebooks' kernels through ``$CHARTLIB_EXECUTOR``."""
    from chartlib.runs import executors
    try:
        chosen = executors.parse(text)
        if chosen.kind == "dask":
            executors.connect(chosen.address).close()
    except (ValueError, ConnectionError) as e:
        raise BuildError(str(e).replace(f"{executors.EXECUTOR_ENV}=", "--executor ", 1)) from None
    os.environ[executors.EXECUTOR_ENV] = text


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m chartlib.book", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="full",
                    help="ci (minutes on 2 CPU cores), full (default) or paper (larger MNIST runs, meant for a GPU)")
    ap.add_argument("--output", default=str(ROOT), help="folder that receives _build/ and .stage/ (default: repo root)")
    ap.add_argument("--only", nargs="*",
                    help="execute only these notebooks (file stems); others keep their staged copy")
    ap.add_argument("--executor", help="where missing runs train: inline, processes, dask-local or dask://host:port "
                                       "(sets CHARTLIB_EXECUTOR for the notebooks; default: that variable, else "
                                       "worker processes)")
    args = ap.parse_args(argv)
    try:
        if args.executor is not None:
            use_executor(args.executor)
        build(args.profile, Path(args.output), args.only)
    except BuildError as e:
        print(f"[book] build failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
