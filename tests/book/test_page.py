"""What a chapter's page and its downloadable notebook carry: the parameters and the results, not the
build's log; the time a notebook will take; and the build's repair of measurements a chapter run by
hand overwrote (a tiny notebook executed by papermill, as the build does).  How figures reach the
page: tests/report/test_figures.py."""
import json
import re

import nbformat
import pytest

from chartlib.book import build
from chartlib.chapters.registry import chapters
from chartlib.common.paths import ROOT
from chartlib.common.progress import Progress


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


def test_the_page_shows_the_parameters_used_and_hides_only_the_training_log(staged):
    src, stage, build_dir = staged
    build.execute(src, stage, "ci", build_dir)
    cells = nbformat.read(stage / "tiny.ipynb", as_version=4).cells
    params, injected = cells[0], cells[1]
    assert "injected-parameters" in injected.metadata.tags and "remove-cell" in injected.metadata.tags
    # the author's cell, with its comments, shows the value the build ran with
    assert params.source.splitlines()[0] == 'profile = "ci"          # "ci": minutes; "full": the published book'
    assert "remove-cell" not in params.metadata.tags
    log_only, log_and_more, warning = cells[2], cells[3], cells[4]
    assert "remove-stdout" in log_only.metadata.tags
    assert "trained flow matching" in log_only.outputs[0].text   # the downloadable notebook keeps the log
    # a cell that also prints something else keeps all its output visible, and so does stderr
    assert not {"remove-stdout", "remove-output", "remove-stderr"} & set(log_and_more.metadata.tags)
    assert not {"remove-stdout", "remove-output", "remove-stderr"} & set(warning.metadata.tags)


def test_show_parameters_keeps_comments_and_other_lines():
    src = 'profile = "full"        # which sizes\nseeds = None   # per arm\nname = "α"  # utf-8\n'
    out = build.show_parameters(src, {"profile": "ci", "name": "βγ"})
    assert out == 'profile = "ci"          # which sizes\nseeds = None   # per arm\nname = "βγ" # utf-8\n'


def test_the_build_recognises_the_line_training_prints(capsys):
    progress = Progress("chart transport · seed 2", 500)   # CHARTLIB_PROGRESS=line (conftest)
    progress.close(12.34)
    line = capsys.readouterr().out.strip()
    assert build.PROGRESS_LINE.fullmatch(line), line


def test_every_chapter_notebook_tells_setup_its_stem():
    for path in [ROOT / "book" / f"{c.stem}.ipynb" for c in chapters()]:
        nb = nbformat.read(path, as_version=4)
        assert any(f'stem="{path.stem}"' in c.source for c in nb.cells if c.cell_type == "code"), path.name
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name} has outputs"


# words that tell the history of the book rather than its content; history belongs in CHANGELOG.md
HISTORY = re.compile(r"previous version|earlier version|this version of|an older version|no longer|"
                     r"used to (?:be|show|train)|we now|is now (?:fixed|done)|formerly|this chapter (?:was|used)", re.I)


def test_page_prose_tells_no_history():
    """The markdown of every page (notebooks and .md pages): how the book came to be is the changelog's."""
    sources = {p.name: [c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == "markdown"]
               for p in (ROOT / "book").glob("*.ipynb")}
    sources |= {p.name: [p.read_text()] for p in (ROOT / "book").glob("*.md")}
    found = [(name, m.group(0)) for name, texts in sources.items() for t in texts for m in HISTORY.finditer(t)]
    assert found == [], found
    assert HISTORY.search("as the previous version of this chapter showed")   # the pattern does catch it


def test_no_page_points_readers_outside_the_repository():
    """The research note is cited from references.bib by title and section, not by a folder a clone lacks."""
    for p in [*(ROOT / "book").glob("*.ipynb"), *(ROOT / "book").glob("*.md")]:
        assert "shared/" not in p.read_text(), p.name
    assert "@misc{chartnote" in (ROOT / "references.bib").read_text()
