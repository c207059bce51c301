"""The "How this copy was built" page's rows (``chartlib.report.build_record``), from a build record
and measurements of our own."""
import json

from chartlib.book import timings
from chartlib.report import build_record as br


def _record(tmp_path, profile="ci"):
    """A build record as the build writes it: two chapters, the summary and the rendering."""
    build = tmp_path / "_build"
    timings.record_timing(build, profile, "01_mode_collapse", 50.0, "executed",
                          {"trained": 3, "cached": 2, "cached_train_seconds": 20.0})
    timings.record_timing(build, profile, "02_chart_transport", 30.0, "executed",
                          {"trained": 6, "cached": 0, "cached_train_seconds": 0.0})
    timings.record_timing(build, profile, "06_summary", 2.0, "executed")
    timings.record_timing(build, profile, "render", 9.0, "executed")
    return build


def test_the_record_names_commit_date_machine_and_versions(tmp_path):
    record = br.load_record("ci", _record(tmp_path))
    assert record["date"].endswith("+00:00") and record["state"]["01_mode_collapse"] == "executed"
    assert record["versions"]["python"] and record["versions"]["torch"]
    assert set(timings.PACKAGES) <= set(record["versions"])
    metrics = {"01_mode_collapse": {"device": "cpu"}, "02_chart_transport": {"device": "cpu"}}
    facts = {f["item"]: f["value"] for f in br.facts(record, metrics)}
    assert facts["profile"] == "ci" and facts["training device"] == "cpu"
    assert facts["machine"] == record["machine"]["description"]
    assert facts["jupyter-book version"] == record["versions"]["jupyter-book"]
    assert "commit" in facts and facts["date (UTC)"] == record["date"]


def test_each_notebook_row_has_its_times_runs_and_rerun_command(tmp_path):
    record = br.load_record("ci", _record(tmp_path))
    rows = {r["stem"]: r for r in br.notebook_rows(record, {"01_mode_collapse": {"device": "cpu"}})}
    assert list(rows) == ["01_mode_collapse", "02_chart_transport", "06_summary", "render"]   # book order
    one, two = rows["01_mode_collapse"], rows["02_chart_transport"]
    assert one["cold"] == "≈ 70" and one["trained"] == 3 and one["cached"] == 2 and one["device"] == "cpu"
    assert two["cold"] == 30 and two["cached"] == 0
    assert one["command"] == "python -m chartlib.book --profile ci --only 01_mode_collapse"
    assert rows["render"]["command"] == "" and rows["render"]["trained"] == ""


def test_a_notebook_kept_from_an_earlier_build_keeps_its_times(tmp_path):
    build = _record(tmp_path)
    timings.record_timing(build, "ci", "01_mode_collapse", 0.4, "up to date")
    record = br.load_record("ci", build)
    row = br.notebook_rows(record, {})[0]
    assert row["state"] == "up to date" and row["seconds"] == 50 and row["trained"] == 3


def test_totals_against_the_budget(tmp_path):
    build = _record(tmp_path)
    totals = br.timing_totals(build)
    assert set(totals) == {"ci"} and totals["ci"]["seconds"] == json.loads(
        (build / "timings" / "ci.json").read_text())["cold_total_seconds"]
    assert totals["ci"]["within"] and totals["ci"]["estimated"]
    assert "against a budget of 5 min (within it)" in br.timing_sentence(build)
    assert br.load_record("full", build) == {} and "No build" in br.timing_sentence(tmp_path / "nothing")
