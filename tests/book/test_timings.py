"""The build's timing record (``chartlib.book.timings``): what each notebook's run ledger says it
trained, the record the build keeps, the expected times it publishes, and the sentence a notebook
prints before it trains (read from this machine's last build, else from the published file)."""
import json

import pytest

from chartlib.book import notebook, timings
from chartlib.chapters.mode_collapse import PROFILES

CPU = {"gpu": None, "description": "2 cores of Some CPU, no GPU", "cores": 2}
GPU = {"gpu": "NVIDIA H200", "description": "16 cores of Other CPU, NVIDIA H200", "cores": 16}


def _record(profile: str, machine: dict, cold: dict, commit: str = "abc1234567") -> dict:
    return {"profile": profile, "machine": machine, "commit": commit, "cold_seconds": cold}


@pytest.fixture
def expected(tmp_path, monkeypatch):
    """A published expected-times file of our own (the repository's may not exist), made by ``publish``
    from CPU records of both profiles and a GPU record of the full one."""
    target = tmp_path / "expected_times.json"
    for name, record in {"cpu-full": _record("full", CPU, {"01_mode_collapse": 600.0, "render": 30.0,
                                                           "06_summary": 5.0}),
                         "cpu-ci": _record("ci", CPU, {"01_mode_collapse": 40.0, "03_space_filling": 20.0}),
                         "gpu-full": _record("full", GPU, {"01_mode_collapse": 180.0}, commit=None)}.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(record))
        timings.publish(path, target)
    monkeypatch.setattr(timings, "EXPECTED", target)
    monkeypatch.setenv("CHARTLIB_BUILD_DIR", str(tmp_path / "_build"))      # no timing record of a build here
    monkeypatch.delenv("CHARTLIB_BOOK_BUILD", raising=False)
    return target


def test_publish_keeps_each_kind_of_machine_and_leaves_out_the_pages(expected):
    published = json.loads(expected.read_text())
    assert set(published) == {"cpu", "cuda"}
    cpu = published["cpu"]
    assert cpu["description"] == CPU["description"] and cpu["commit"] == "abc1234567"
    assert cpu["profiles"] == {"full": {"01_mode_collapse": 600.0}, "ci": {"01_mode_collapse": 40.0,
                                                                         "03_space_filling": 20.0}}
    assert published["cuda"]["profiles"] == {"full": {"01_mode_collapse": 180.0}}


def test_setup_says_how_long_the_chapter_takes_before_training(expected, tmp_path, capsys):
    notebook.setup(PROFILES, "full", "cpu", stem="01_mode_collapse")
    out = capsys.readouterr().out
    assert "profile full: about 10 min" in out and "measured on 2 cores of Some CPU, no GPU at commit abc1234567" in out
    assert 'For the fast version (about 40 s), set profile = "ci"' in out
    notebook.setup(PROFILES, "ci", "cpu", stem="01_mode_collapse")
    out = capsys.readouterr().out
    assert "profile ci: about 40 s" in out and "fast version" not in out
    # a build on this machine recorded its own time: that one is used, with its machine
    folder = tmp_path / "_build" / "timings"
    folder.mkdir(parents=True)
    (folder / "full.json").write_text(json.dumps({
        "cold_seconds": {"01_mode_collapse": 1500.0},
        "machine": {"gpu": None, "description": "2 cores of This CPU, no GPU"}}))
    notebook.setup(PROFILES, "full", "cpu", stem="01_mode_collapse")
    out = capsys.readouterr().out
    assert "about 25 min" in out and "measured by the last build here, on 2 cores of This CPU" in out
    # ... but not for a GPU: that build ran without one
    assert "measured on 16 cores of Other CPU, NVIDIA H200" in timings.expected_time("01_mode_collapse", "full",
                                                                                      "cuda")


def test_the_book_build_prints_no_advice(expected, monkeypatch, capsys):
    monkeypatch.setenv("CHARTLIB_BOOK_BUILD", "1")       # the page is read, not run
    notebook.setup(PROFILES, "full", "cpu", stem="01_mode_collapse")
    assert "Expected time" not in capsys.readouterr().out


def test_a_gpu_uses_the_gpu_measurements_or_says_there_are_none(expected):
    text = timings.expected_time("01_mode_collapse", "full", "cuda")
    assert "about 3 min on a fresh machine (measured on 16 cores of Other CPU, NVIDIA H200;" in text
    assert "at commit" not in text                                   # that record had no commit
    text = timings.expected_time("03_space_filling", "full", "cuda")
    assert "no measured time for profile full on cuda" in text and 'set profile = "ci"' in text
    assert timings.expected_seconds("03_space_filling", "ci", "cuda") is None


def test_without_a_published_file_there_is_no_measured_time(tmp_path, monkeypatch):
    monkeypatch.setattr(timings, "EXPECTED", tmp_path / "missing.json")
    monkeypatch.setenv("CHARTLIB_BUILD_DIR", str(tmp_path))
    assert timings.expected_seconds("01_mode_collapse", "full", "cpu") is None
    text = timings.expected_time("01_mode_collapse", "full", "cpu")
    assert text.startswith("This chapter has no measured time for profile full on cpu.")


def test_count_runs_reads_a_ledger(tmp_path):
    ledger = tmp_path / ".nb.runs.jsonl"
    entries = [("A", "trained", 2.0), ("B", "loaded", 3.0), ("C", "loaded", 4.0), ("A", "loaded", 2.0),
               ("B", "loaded", 3.0), ("D", "trained", 1.5), ("E", "loaded", 0.5)]
    ledger.write_text("".join(json.dumps({"key": k, "event": ev, "seconds": s, "device": "cpu"}) + "\n"
                              for k, ev, s in entries) + "\n")
    runs, keys = timings.count_runs(ledger, seen={"C", "Z"})
    # trained here: A and D; credited: loaded runs neither trained here (A) nor used earlier (C), each once
    assert runs == {"trained": 2, "cached": 2, "cached_train_seconds": 3.5}
    assert keys == {"A", "B", "C", "D", "E"}
    nothing = {"trained": 0, "cached": 0, "cached_train_seconds": 0.0}
    assert timings.count_runs(tmp_path / "missing.jsonl", {"A"}) == (nothing, set())


def test_the_build_gives_each_notebook_its_own_ledger(tmp_path):
    a, b = timings.ledger_path(tmp_path, "01_mode_collapse"), timings.ledger_path(tmp_path, "02_chart_transport")
    assert a != b and a.parent == tmp_path and "01_mode_collapse" in a.name


def test_the_record_keeps_each_notebook_its_cold_time_the_machine_and_the_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(timings, "commit", lambda: "0123456789+")
    monkeypatch.setattr(timings, "describe_machine", lambda: CPU)
    timings.record_timing(tmp_path, "ci", "01_mode_collapse", 10.0, "executed",
                          {"trained": 2, "cached": 1, "cached_train_seconds": 5.0})
    timings.record_timing(tmp_path, "ci", "02_chart_transport", 20.0, "executed")
    timings.record_timing(tmp_path, "ci", "01_mode_collapse", 1.0, "up to date")     # keeps its execution's time
    record = json.loads((tmp_path / "timings" / "ci.json").read_text())
    assert record["profile"] == "ci" and record["commit"] == "0123456789+" and record["machine"] == CPU
    assert record["notebook_seconds"] == {"01_mode_collapse": 10.0, "02_chart_transport": 20.0}
    assert record["cold_seconds"] == {"01_mode_collapse": 15.0, "02_chart_transport": 20.0}
    assert record["cold_estimated"] == {"01_mode_collapse": True, "02_chart_transport": False}
    assert record["total_seconds"] == 30.0 and record["cold_total_seconds"] == 35.0


def test_the_commit_is_this_repositorys():
    commit = timings.commit()
    assert commit is None or (len(commit.rstrip("+")) == 10 and set(commit.rstrip("+")) <= set("0123456789abcdef"))
