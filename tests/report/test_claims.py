"""The claim rules on made-up measurements: chapter 1's released-field claims, the verdict helpers
(``chartlib.report.claims.verdicts``) and the tally.  The rules on the built book's measurements:
tests/report/test_summary.py; MNIST's: tests/report/test_mnist.py."""
import pytest

from chartlib.report.claims import VERDICTS, claims, evidence, tally, verdict_style
from chartlib.report.claims import mode_collapse as mc
from chartlib.report.claims.verdicts import COLOURS, count_verdict, per_seed, row, verdict


def _seed(far: float, held: int) -> dict:
    return {"far": far, "spread": 0.01 if far > 0.9 else 2.0, "modes_held": held, "majority": 0.5, "energy": 0.0}


def _metrics(released_far, floor_runs):
    arm = {"label": "arm", "per_seed": [_seed(0.1, 2)] * 2}
    floor_sweep = {f: {"per_seed": [_seed(far, held) for far, held in runs]} for f, runs in floor_runs.items()}
    return {"arms": {"small_tau": arm, "multi_tau": arm, "large_tau": arm,
                     "released": {"label": "released", "per_seed": [_seed(f, 2) for f in released_far]}},
            "sweep": {"4": {"summary": {"collapsed_seeds": 0, "seeds": 2}}}, "floor_sweep": floor_sweep}


def _verdict(rows, start):
    return next(r["verdict"] for r in rows if r["claim"].startswith(start))


def test_released_claims_follow_their_rules():
    good = _metrics([1.0, 0.99], {"0": [(0.02, 2), (0.03, 2)], "1e-06": [(1.0, 2), (1.0, 1)]})
    rows = mc.claims(good)
    assert _verdict(rows, "With the released code's field") == "reproduced"
    assert _verdict(rows, "The floor decides it") == "reproduced"
    some = _metrics([1.0, 0.2], {"0": [(0.02, 2), (0.9, 1)], "1e-06": [(1.0, 2), (1.0, 1)]})
    rows = mc.claims(some)
    assert _verdict(rows, "With the released code's field") == "partly"
    assert _verdict(rows, "The floor decides it") == "partly"
    none = _metrics([0.1, 0.2], {"0": [(0.02, 1)], "1e-06": [(0.1, 2)]})
    rows = mc.claims(none)
    assert _verdict(rows, "With the released code's field") == "not reproduced"
    assert _verdict(rows, "The floor decides it") == "not reproduced"
    assert all(r["stem"] == "01_mode_collapse" for r in rows)


def test_the_released_points_follow_the_share_threshold():
    at = _metrics([mc.POINT, mc.POINT], {"0": [(0.0, 2)]})
    below = _metrics([mc.POINT - 0.01, mc.POINT - 0.01], {"0": [(0.0, 2)]})
    assert _verdict(mc.claims(at), "With the released code's field") == "reproduced"
    assert _verdict(mc.claims(below), "With the released code's field") == "not reproduced"


def test_measurements_without_the_released_arm_say_not_tested():
    m = _metrics([1.0], {"0": [(0.0, 2)]})
    del m["arms"]["released"], m["floor_sweep"]
    assert _verdict(mc.claims(m), "The released code's field") == "not tested"


def test_tally_and_verdict_style():
    rows = [{"source": "note", "verdict": "reproduced"}, {"source": "note", "verdict": "partly"},
            {"source": "book", "verdict": "reproduced"}, {"source": "note", "verdict": "reproduced"}]
    assert tally(rows, "note") == {"reproduced": 2, "partly": 1, "not reproduced": 0, "not tested": 0}
    assert tally(rows, "book")["reproduced"] == 1
    assert [verdict(v) for v in (True, False, None)] == ["reproduced", "not reproduced", "not tested"]
    assert verdict_style("claim", "reproduced") == ""
    assert len({verdict_style("verdict", v) for v in VERDICTS}) == len(VERDICTS)
    assert set(COLOURS) == set(VERDICTS) and all(COLOURS[v] in verdict_style("verdict", v) for v in VERDICTS)


def test_count_verdict_and_per_seed_values():
    assert [count_verdict(h, 3) for h in (3, 1, 0)] == ["reproduced", "partly", "not reproduced"]
    assert count_verdict(0, 0) == "not tested"
    assert per_seed([0.5]) == "0.500 (1 seed)"
    assert per_seed([1.0, 3.0], ".1f").startswith("2.0 ± 1.4") and "2 seeds" in per_seed([1.0, 3.0], ".1f")


def test_a_row_names_its_chapter_by_stem_and_refuses_an_unknown_verdict():
    r = row("01_mode_collapse", "note", "a claim", "how", "value", "rule", "partly", keys=("arms.a",))
    assert r == {"stem": "01_mode_collapse", "source": "note", "claim": "a claim", "measurement": "how",
                 "value": "value", "rule": "rule", "verdict": "partly",      # claims() adds the chapter's title
                 "keys": ["arms.a"], "seeds_used": None}
    with pytest.raises(ValueError, match="verdict='maybe' is not allowed"):
        row("01_mode_collapse", "note", "a claim", "how", "value", "rule", "maybe", keys=("arms.a",))


def test_a_tested_claim_must_name_the_measurements_it_reads():
    with pytest.raises(ValueError, match="name the measurements"):
        row("01_mode_collapse", "note", "a claim", "how", "value", "rule", "reproduced")
    row("01_mode_collapse", "note", "a claim", "not measured", "", "", "not tested")   # nothing to name


def test_evidence_names_keys_and_the_seeds_recorded_under_them():
    two = {"per_seed": [{"seed": 0}, {"seed": 2}]}
    m = {"profile": "ci", "arms": {"a": two, "b": two, "c": {"per_seed": [{"seed": 5}]}},
         "sweep": {"4": {"per_seed": [{"seed": 1}]}, "8": {"per_seed": [{"seed": 3}]}}, "cost": {"chart": 1.0}}
    r = row("01_mode_collapse", "book", "c", "m", "v", "r", "reproduced", keys=("arms.a", "arms.b", "arms.c", "sweep",
                                                                            "cost", "arms.missing"))
    ev = evidence(m, r)
    assert [s["seeds"] for s in ev["sources"]] == [[0, 2], [0, 2], [5], [1, 3], [], []]
    assert ev["evidence"] == ("arms.a, arms.b, seeds 0, 2; arms.c, seed 5; sweep, seeds 1, 3; cost; "
                              "arms.missing (not measured)")
    only = row("01_mode_collapse", "book", "c", "m", "v", "r", "reproduced", keys=("arms.a",), seeds=(2,))
    assert evidence(m, only)["evidence"] == "arms.a, seed 2"


def test_every_claim_row_gets_its_evidence_and_rerun_command():
    m = _metrics([1.0, 0.99], {"0": [(0.02, 2), (0.03, 2)], "1e-06": [(1.0, 2), (1.0, 1)]})
    m["profile"] = "ci"
    for arm in m["arms"].values():
        arm["per_seed"] = [{**p, "seed": i} for i, p in enumerate(arm["per_seed"])]
    rows = claims({"01_mode_collapse": m})
    assert rows and all(r["command"] == "python -m chartlib.book --profile ci --only 01_mode_collapse" for r in rows)
    released = next(r for r in rows if r["claim"].startswith("With the released code's field"))
    assert released["evidence"] == "arms.released, seeds 0, 1"
