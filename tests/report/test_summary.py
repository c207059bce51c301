"""The summary chapter's verdicts follow their stated rules, on the ci book's real measurements and
on copies of them changed to known outcomes.  The rules live in ``chartlib.report.claims``; loading the
measurements in ``chartlib.report.summary``."""
import copy
import json

import pytest

from chartlib.chapters.registry import chapters, titles
from chartlib.report import claims as cl
from chartlib.report import summary
from chartlib.report.claims.chart_transport import DETACHED
from chartlib.report.claims.space_filling import OFF
from chartlib.report.claims.stochastic_encoding import CRITIC

STEMS = [c.stem for c in chapters()]


@pytest.fixture(scope="module")
def measured(built_book):
    return summary.load_metrics(built_book)


def verdict_of(rows, text):
    hits = [r for r in rows if text in r["claim"]]
    assert len(hits) == 1, [r["claim"] for r in rows]
    return hits[0]["verdict"]


def test_every_chapter_contributes_claims_with_rules(measured):
    rows = cl.claims(measured)
    assert {r["stem"] for r in rows} == set(STEMS)
    assert all(r["chapter"] == titles()[r["stem"]] for r in rows)       # claims() names each row's chapter
    assert sum(r["source"] == "note" for r in rows) >= 10 and sum(r["source"] == "book" for r in rows) >= 5
    for r in rows:
        assert r["rule"] and r["value"] and r["verdict"] in cl.VERDICTS
        # auditable: the measurements and seeds behind it, and the command that re-runs just its chapter
        assert r["command"] == f"python -m chartlib.book --profile ci --only {r['stem']}"
        if r["verdict"] != "not tested":
            assert r["sources"] and all(s["measured"] for s in r["sources"]), (r["claim"], r["sources"])
            assert all(s["seeds"] for s in r["sources"] if s["key"].startswith("arms.")), r["claim"]
    stems = [r["stem"] for r in rows]
    assert stems == sorted(stems, key=STEMS.index)                       # chapter order
    for stem in STEMS:                                                    # the note's claims first in each
        sources = [r["source"] for r in rows if r["stem"] == stem]
        assert sources == sorted(sources, key=lambda s: s != "note")


def test_the_summary_page_wrote_the_same_claims(built_book, measured):
    page = json.loads((built_book / "metrics" / "06_summary.json").read_text())
    assert page["profile"] == "ci"
    rows = cl.claims(measured)
    assert [(r["claim"], r["verdict"]) for r in page["claims"]] == [(r["claim"], r["verdict"]) for r in rows]
    assert page["note"] == cl.tally(rows, "note") and page["book"] == cl.tally(rows, "book")


@pytest.mark.parametrize("collapsed, expected", [(0, "not reproduced"), (1, "partly"), (None, "reproduced")])
def test_collapse_verdict_counts_seeds(measured, collapsed, expected):
    m = copy.deepcopy(measured)
    seeds = m["01_mode_collapse"]["arms"]["small_tau"]["per_seed"]
    n = len(seeds) if collapsed is None else collapsed
    for i, p in enumerate(seeds):
        p["majority"] = 1.0 if i < n else 0.5
    assert verdict_of(cl.claims(m), "collapses onto one mode") == expected


def test_chart_coverage_verdict_and_its_dependency(measured):
    m = copy.deepcopy(measured)
    ct = m["02_chart_transport"]["arms"]["chart"]["per_seed"]
    ct[0]["modes_held"] = 1
    rows = cl.claims(m)
    assert verdict_of(rows, "covers every mode") == "partly"
    # "needs latents inside the prior" also needs every plain chart seed to cover both modes
    assert verdict_of(rows, "start inside the prior") == "not reproduced"


def test_detached_reconstruction_verdict_uses_the_ratio(measured):
    m = copy.deepcopy(measured)
    arms = m["02_chart_transport"]["arms"]
    detached, chart = arms["detached_recon"]["per_seed"][0], arms["chart"]["per_seed"][0]
    detached["recon_error"] = (DETACHED - 1) * chart["recon_error"]
    assert verdict_of(cl.claims(m), "must reach the encoder") == "not reproduced"
    detached["recon_error"] = (DETACHED + 1) * chart["recon_error"]
    assert verdict_of(cl.claims(m), "must reach the encoder") == "reproduced"


def test_sweep_verdict_needs_a_monotone_onset(measured):
    m = copy.deepcopy(measured)
    sweep = m["01_mode_collapse"]["sweep"]
    keys = sorted(sweep, key=float)
    for k in keys:
        sweep[k]["summary"]["collapsed_seeds"] = 0
    sweep[keys[-1]]["summary"]["collapsed_seeds"] = sweep[keys[-1]]["summary"]["seeds"]
    assert verdict_of(cl.claims(m), "separation/τ") == "reproduced"
    sweep[keys[0]]["summary"]["collapsed_seeds"] = sweep[keys[0]]["summary"]["seeds"]   # collapse, then none
    assert verdict_of(cl.claims(m), "separation/τ") != "reproduced"


def test_surface_verdicts_compare_seeds(measured):
    m = copy.deepcopy(measured)
    arms = m["04_stochastic_encoding"]["arms"]
    for p in arms["kernel"]["per_seed"]:
        p["samples"]["off_surface"][OFF] = 1.0          # worse than deterministic everywhere
    assert verdict_of(cl.claims(m), "keeps samples on the surface") == "not reproduced"


def test_critic_failure_verdict_and_its_absence(measured):
    m = copy.deepcopy(measured)
    arms = m["04_stochastic_encoding"]["arms"]
    for p in arms["critic"]["per_seed"]:
        p["samples"]["off_surface"][OFF] = 0.05
    for p in arms["failing_critic"]["per_seed"]:
        p["samples"]["off_surface"][OFF] = 0.05 * CRITIC
    assert verdict_of(cl.claims(m), "score critic fails") == "reproduced"
    for p in arms["failing_critic"]["per_seed"]:
        p["samples"]["off_surface"][OFF] = 0.05          # the failing critic does as well as the working one
    assert verdict_of(cl.claims(m), "score critic fails") == "not reproduced"
    del arms["failing_critic"]
    assert verdict_of(cl.claims(m), "score critic fails") == "not tested"


def test_mnist_claims_are_recomputed_from_the_distances(measured):
    m = copy.deepcopy(measured)
    for a in m["05_mnist"]["arms"].values():
        if a["kind"] == "chart":       # make 12-D the worst everywhere
            fd = 1000.0 if a["latent_dim"] == 12 else 10.0
            a["summary"]["scores"]["fd"]["mean"] = fd
            for p in a["per_seed"]:
                p["scores"]["fd"] = fd
    assert verdict_of(cl.claims(m), "12-D latents give the best samples") == "not reproduced"


def test_missing_or_mixed_measurements_are_refused(tmp_path):
    (tmp_path / "metrics").mkdir()
    with pytest.raises(summary.MissingMetrics, match="01_mode_collapse"):
        summary.load_metrics(tmp_path)
    for stem in STEMS:
        profile = "full" if stem == "05_mnist" else "ci"
        (tmp_path / "metrics" / f"{stem}.json").write_text(json.dumps({"profile": profile, "stem": stem}))
    with pytest.raises(summary.MissingMetrics, match="different profiles"):
        summary.load_metrics(tmp_path)
    loaded = summary.load_metrics(tmp_path, stems=("01_mode_collapse", "02_chart_transport"))   # one profile
    assert loaded == {s: {"profile": "ci", "stem": s} for s in ("01_mode_collapse", "02_chart_transport")}
    (tmp_path / "metrics" / "01_mode_collapse.json").write_text("{truncated")
    with pytest.raises(summary.MissingMetrics, match="not valid JSON"):
        summary.load_metrics(tmp_path)
