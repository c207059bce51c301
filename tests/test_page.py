"""What a chapter's page and its downloadable notebook carry: the parameters and the results, not the
build's log; figures once; the time a notebook will take; and the build's repair of measurements a
chapter run by hand overwrote (a tiny notebook executed by papermill, as the build does)."""
import json

import nbformat
import pytest

from chartlib import build


def tiny_notebook(folder, stem="tiny"):
    """A chapter in miniature: a parameters cell, a training log, a warning, its measurements."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "full"        # "ci": minutes; "full": the published book\n'
                                       'steps = None            # None: the profile\'s value')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell('print("trained chart transport · seed 0: 500 steps in 1.5 s")\n'
                                  'print("trained flow matching · seed 0: 500 steps in 1.0 s")'),
        nbformat.v4.new_code_cell('print("trained chart transport · seed 1: 500 steps in 1.5 s")\n'
                                  'print("the loss went up: look at the figure")'),
        nbformat.v4.new_code_cell('import sys\nprint("UserWarning: something a reader should see", file=sys.stderr)'),
        nbformat.v4.new_code_cell(
            "import json, os, pathlib\n"
            f"out = pathlib.Path(os.environ['CHARTLIB_BUILD_DIR']) / 'metrics' / '{stem}.json'\n"
            "out.parent.mkdir(parents=True, exist_ok=True)\n"
            "out.write_text(json.dumps({'profile': profile}))"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = folder / "book" / f"{stem}.ipynb"
    src.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, src)
    return src


@pytest.fixture
def staged(tmp_path, monkeypatch):
    """Source, stage folder and build folder of one tiny chapter, with the build's environment."""
    build_dir = tmp_path / "_build"
    monkeypatch.setenv("CHARTLIB_BUILD_DIR", str(build_dir))
    monkeypatch.setenv("CHARTLIB_RUN_LEDGER", str(tmp_path / "ledger.jsonl"))   # execute() sets it; restored after
    stage = tmp_path / ".stage" / "book"
    stage.mkdir(parents=True)
    return tiny_notebook(tmp_path), stage, build_dir


def test_a_chapter_whose_measurements_were_rewritten_by_hand_is_executed_again(staged):
    src, stage, build_dir = staged
    metrics = build_dir / "metrics" / "tiny.json"
    assert build.execute(src, stage, "ci", build_dir) == "executed"
    assert json.loads(metrics.read_text()) == {"profile": "ci"}
    assert build.execute(src, stage, "ci", build_dir) == "up to date"
    metrics.write_text(json.dumps({"profile": "full"}))    # the chapter run by hand with its default profile
    assert build.execute(src, stage, "ci", build_dir) == "executed"
    assert json.loads(metrics.read_text()) == {"profile": "ci"}
    assert build.execute(src, stage, "ci", build_dir) == "up to date"
