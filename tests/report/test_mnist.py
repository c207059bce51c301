"""The MNIST chapter's page: the record it writes, its claims decided over seeds, its tables and
sentences, and its figures, on made-up results (no training, no MNIST on disk)."""
from __future__ import annotations

import base64
import io
import json

import pytest
import torch

from chartlib.chapters import mnist as ch
from chartlib.core.training import Run
from chartlib.measure.scores import spread
from chartlib.report import mnist as tx
from chartlib.report import mnist_diagnosis as dx
from chartlib.report import mnist_figures as mf
from chartlib.report.claims import mnist as cl
from chartlib.report.claims.verdicts import verdict_style, verdict_word
from chartlib.runs.arms import Arm, Result

SCORES = ch.SCORE_KEYS


def _scores(fd: float) -> dict:
    return {**{k: 1.0 for k in SCORES}, "fd": fd}


def _result(fd: dict, flows=None) -> Result:
    """A chapter Result with made-up scores: flow-matching variants (FD by key, one seed), then one
    chart arm per (latent dim, encoding) with one FD per seed (a number: one seed)."""
    arms = {}
    for key, v in (flows or {ch.FLOW: 1.0}).items():
        flow = [{"seed": 0, "scores": _scores(v), "n_samples": 100, "train_seconds": 2.0,
                 "sampling": {"network_evaluations": 50, "samples_per_second": 10.0}}]
        arms[key] = Arm(key, ch.FLOW_VARIANTS[key][0], [], flow, ch._summary(flow), {"kind": "flow", "variant": key})
    for (d, e), values in fd.items():
        values = values if isinstance(values, list) else [values]
        p = [{"seed": i, "scores": _scores(v), "n_samples": 100,
              "reconstruction": {"scores": _scores(v / 2), "n_samples": 100},
              "recon_error": 3.0, "latent_energy": 0.5, "train_seconds": 1.0,
              "sampling": {"network_evaluations": 1, "samples_per_second": 1000.0},
              **({"mean_sigma": 0.3} if e == "stochastic" else {})} for i, v in enumerate(values)]
        arms[ch.arm_key(d, e)] = Arm(ch.arm_key(d, e), f"chart {d}-D, {e}", [], p, ch._summary(p),
                                     {"kind": "chart", "latent_dim": d, "encoding": e})
    intrinsic = {space: {"dim": dim, "test": {"estimate": est, "low": est - 0.2, "high": est + 0.2, "n_used": 100},
                         "train": [{"n_points": 50, "repeats": 2, "median": est - 1, "sd": 0.3}]}
                 for space, dim, est in (("pixels", 784, 13.5), ("features", 128, 9.0))}
    measured = {"floor": {"scores": {k: 0.5 for k in SCORES}, "n_samples": 100}, "device": "cpu", "n_eval": 100,
                "intrinsic": intrinsic}
    return Result(arms, measured, [0, 5, 10], 1.0)


NOTE_LIKE = {(12, "deterministic"): 10, (12, "stochastic"): 12, (32, "deterministic"): 15,
             (32, "stochastic"): 14.5, (128, "deterministic"): 60, (128, "stochastic"): 30}


def test_the_record_keeps_label_seeds_summary_and_extra():
    rec = _result({(12, "deterministic"): 10, (12, "stochastic"): [12, 14]}).record()
    assert list(rec["arms"]) == [ch.FLOW, "d12-deterministic", "d12-stochastic"]
    a = rec["arms"]["d12-stochastic"]
    assert a["label"] == "chart 12-D, stochastic" and a["kind"] == "chart" and a["latent_dim"] == 12
    assert a["encoding"] == "stochastic" and a["per_seed"][0]["mean_sigma"] == 0.3
    assert a["summary"]["scores"]["fd"] == spread([12.0, 14.0]) and a["summary"]["reconstruction"]["fd"]["mean"] == 6.5
    assert "reconstruction" not in rec["arms"][ch.FLOW]["summary"] and rec["arms"][ch.FLOW]["variant"] == ch.FLOW
    assert rec["floor"]["n_samples"] == 100 and rec["steps"] == [0, 5, 10] and rec["wall_seconds"] == 1.0
    json.dumps(rec)                                          # JSON-ready: no Run objects


def _note_claims(result: Result) -> list[dict]:
    return cl.note_claims(result.record())


# ---------------------------------------------------------------------------------------------
# the claims (chartlib.report.claims.mnist)

def test_note_claims_follow_their_rules_in_every_seed():
    claims = _note_claims(_result(NOTE_LIKE))
    assert [c["verdict"] for c in claims] == ["reproduced"] * 6
    assert cl.mnist_note_claims(cl.fd_by_arm(_result(NOTE_LIKE).record())) == claims
    flat = {k: 10.0 for k in NOTE_LIKE}
    assert [c["verdict"] for c in _note_claims(_result(flat))] == ["not reproduced"] * 6
    only_det = {k: v for k, v in NOTE_LIKE.items() if k[1] == "deterministic"}
    verdicts = [c["verdict"] for c in _note_claims(_result(only_det))]
    assert verdicts.count("not tested") == 4 and "reproduced" in verdicts
    # two seeds: the note-like one and a flat one -> every rule holds in one seed of two
    two = {k: [v, 10.0] for k, v in NOTE_LIKE.items()}
    claims = _note_claims(_result(two))
    assert [verdict_word(c["verdict"]) for c in claims] == ["partly"] * 6
    assert all(c["held"] == 1 and c["tested"] == 2 and "holds in 1 of 2" in c["evidence"] for c in claims)
    # only the note's dimensions count for its claims: a better 16-D chart does not refute "12-D is best"
    assert _note_claims(_result({**NOTE_LIKE, (16, "deterministic"): 1.0}))[0]["verdict"] == "reproduced"


def test_a_verdict_says_when_a_difference_is_inside_the_seed_spread():
    tight = {k: [v, v * 1.001, v * 0.999] for k, v in NOTE_LIKE.items()}
    claims = _note_claims(_result(tight))
    assert [c["verdict"] for c in claims] == ["reproduced"] * 6
    assert "±" in claims[0]["evidence"] and "holds in 3 of 3 seeds" in claims[0]["evidence"]
    # 32-D stochastic 14.5 vs deterministic 15: reproduced in every seed, but by less than one sd
    loose = {**tight, (32, "deterministic"): [16.0, 15.0, 14.0], (32, "stochastic"): [15.5, 14.5, 13.5]}
    claims = {c["claim"]: c["verdict"] for c in _note_claims(_result(loose))}
    mitigates = claims["stochastic encoding mitigates the failure at larger latent dimensions"]
    assert mitigates.startswith("reproduced, inside the seed spread") and "32-D deterministic" in mitigates
    assert verdict_word(mitigates) == "reproduced" and "#d9f2d9" in verdict_style("verdict", mitigates)
    assert cl.inside_spread({(1, "a"): [1.0], (2, "a"): [1.1]}, [((1, "a"), (2, "a"), 1.0)]) == []   # one seed
    assert "another seed could turn" in cl.mnist_claims_sentence(_note_claims(_result(loose)), "full")


def test_the_noise_level_claim_reads_both_curves():
    def scale(ranks, noise):
        return {"n_points": 100, "ranks": [{"k": 2 ** i, "dimension": d} for i, d in enumerate(ranks)],
                "noise": [{"sigma": s, "dimension": d} for s, d in zip((0.0, 0.1, 0.3), noise)]}
    assert cl.noise_level_claim(scale([14, 12, 10], [14, 30, 200]))["verdict"] == "reproduced"
    assert cl.noise_level_claim(scale([14, 13.5, 13], [14, 30, 200]))["verdict"] == "partly"
    row = cl.noise_level_claim(scale([14, 13.5, 13], [14, 14.5, 15]))
    assert row["verdict"] == "not reproduced" and row["source"] == "note" and "×1.08" in row["value"]


def _diagnosis(fd_prior: float, seed: int) -> dict:
    """A made-up diagnosis of a chart: decoding training latents scores half the prior's FD."""
    place = {"k": 10, "median_distance": 1.0, "mean_share": 0.9, "rho_distance_confidence": -0.1,
             "rho_share_confidence": 0.5}
    return {"latent_two_nn": 6.0 + seed, "prior_two_nn": 12.0,
            "decoded_from": {"prior": fd_prior, "gaussian_fit": fd_prior, "mixture_10": 0.75 * fd_prior,
                             "train_latents": fd_prior / 2},
            "mixture_prior": {"components": 10, "scores": _scores(0.75 * fd_prior)},
            "placement": {"prior": {**place, "median_distance": 2.0, "mean_share": 0.6}, "held_out": place}}


def test_diagnosis_tables_and_sentences_follow_the_numbers():
    result = _result({(12, "deterministic"): [10.0, 12.0], (128, "deterministic"): [40.0, 40.0]})
    for arm in result.arms.values():
        for p in arm.per_seed:
            if arm.extra["kind"] == "chart":
                p["diagnosis"] = _diagnosis(p["scores"]["fd"], p["seed"])
    assert dx.sources(result) == ["prior", "gaussian_fit", "mixture_10", "train_latents"]
    rows = dx.decoded_rows(result)
    assert rows[0]["closed"] == "50% (mixture of 10)" and rows[0]["prior"] == "11 ± 1.4"
    assert "a Gaussian fit closes 0%" in dx.decoded_sentence(result)
    assert "a mixture of 10 closes 50%" in dx.decoded_sentence(result)
    dims = dx.dimension_rows(result)
    assert dims[0]["latent"] == "6.5 ± 0.71" and dims[0]["ratio"] == "0.542 ± 0.059"
    assert "from 12-D on their held-out latents are thinner" in dx.dimension_sentence(result)
    text = dx.placement_sentence(result)
    assert "2.00× as far" in text and "class boundaries" in text
    assert "FD 8.25" in dx.mixture_sentence(result) and "flow matching" in dx.mixture_sentence(result)
    assert [r["queries"] for r in dx.placement_rows(result)] == ["prior samples", "held-out digits"] * 2
    text = dx.conclusion(result)
    assert "Mostly the latent law" in text and "space-filling problem" in text and "where digit classes meet" in text
    for arm in result.arms.values():                     # training latents decoding worse than the prior: no gap
        for p in arm.per_seed:
            if "diagnosis" in p:
                p["diagnosis"]["decoded_from"]["train_latents"] = 2 * p["scores"]["fd"]
    assert {r["closed"] for r in dx.decoded_rows(result)} == {"no gap"} and dx.conclusion(result) == ""
    assert "no gap for a law to close" in dx.decoded_sentence(result) and "nan" not in dx.decoded_sentence(result)
    rec = result.record()
    fig = mf.score_figure({**rec, "floor": result.measured["floor"], "intrinsic": result.measured["intrinsic"]})
    names = {t.name for t in fig.data}
    assert "chart + fitted mixture, deterministic" in names and "prior samples N(0, I)" in names


def test_the_batch_sentence_judges_the_ratio_by_the_seed_spread():
    result = _result({(12, "deterministic"): [10.0, 12.0, 14.0]})      # reconstructions score half: ratio 2
    assert tx.batch_sentence(result) == ""
    base = result.arms["d12-deterministic"]
    for p, recon in zip(base.per_seed, (5.0, 5.5, 7.5)):                 # ratios 2.0, 2.18, 1.87: sd 0.16
        p["reconstruction"]["scores"]["fd"] = recon
    p = {**base.per_seed[0], "scores": _scores(9.5), "reconstruction": {"scores": _scores(5.0)}}
    result.arms["gap-batch"] = Arm("gap-batch", "chart 12-D, deterministic, batch 1024", [], [p], {},
                                   {"kind": "gap", "latent_dim": 12, "change": "batch"})
    text = tx.batch_sentence(result)
    assert "×1.90 its reconstructions, against ×2.00" in text and "inside the seed spread" in text
    p["scores"] = _scores(6.0)
    assert "outside the seed spread" in tx.batch_sentence(result)


def test_fd_by_arm_gives_every_seed_in_seed_order():
    rec = _result({(12, "deterministic"): [10, 13], (32, "stochastic"): 20}).record()
    rec["arms"]["d12-deterministic"]["per_seed"].reverse()
    assert cl.fd_by_arm(rec) == {(12, "deterministic"): [10.0, 13.0], (32, "stochastic"): [20.0]}


def test_book_claims_on_flow_matching_and_the_best_dimension():
    curve = {(2, "deterministic"): 50, (12, "deterministic"): 10, (128, "deterministic"): 40,
             (2, "stochastic"): 50, (16, "stochastic"): 11, (128, "stochastic"): 40}
    rec = tx.record(_result(curve, {ch.FLOW: 100.0, "flow-velocity": 900.0}), [])
    rows = {r["claim"]: r for r in cl.claims(rec)}
    assert all(r["stem"] == "05_mnist" and "chapter" not in r for r in rows.values())   # claims() adds it
    fix = rows["Predicting the clean digit instead of the velocity makes flow matching on pixels work"]
    assert fix["verdict"] == "reproduced"
    best = rows["The best latent dimension lies near MNIST's intrinsic dimension"]
    assert best["verdict"] == "reproduced" and "deterministic 12-D" in best["value"]
    far = tx.record(_result({**curve, (2, "deterministic"): 1.0}, {ch.FLOW: 400.0, "flow-velocity": 900.0}), [])
    rows = {r["claim"]: r["verdict"] for r in cl.claims(far)}
    assert rows["The best latent dimension lies near MNIST's intrinsic dimension"] == "not reproduced"
    fix = "Predicting the clean digit instead of the velocity makes flow matching on pixels work"
    assert rows[fix] == "not reproduced"
    best = cl.best_dimensions({(2, "deterministic"): [5.0, 1.0], (12, "deterministic"): [2.0, 3.0]})
    assert best == [{"deterministic": 12}, {"deterministic": 2}]


def test_the_record_carries_the_claims_it_was_given():
    result = _result(NOTE_LIKE)
    claims = _note_claims(result)
    assert tx.record(result, claims) == {**result.record(), "claims": claims}


# ---------------------------------------------------------------------------------------------
# tables, sentences and the score figure (chartlib.report.mnist, chartlib.report.mnist_figures)


def test_table_rows_of_the_chapter():
    result = _result({(12, "deterministic"): [10, 14], (12, "stochastic"): 12},
                     {ch.FLOW: 100.0, "flow-velocity": 900.0})
    flows = tx.flow_rows(result)
    assert [r["prediction"] for r in flows] == ["clean", "velocity"] and flows[1]["fd"] == "900"
    assert "9.0× lower" in tx.flow_sentence(result)
    charts = tx.chart_rows(result)
    assert [r["arm"] for r in charts] == ["chart 12-D, deterministic", "chart 12-D, stochastic"]
    assert charts[0]["fd"] == "12 ± 2.8" and charts[0]["recon_fd"] == "6 ± 1.4" and charts[0]["gap"] == "2 ± 0"
    assert [r["mean_sigma"] for r in charts] == ["", "0.3"]
    assert [r["nfe"] for r in tx.cost_rows(result)] == [50, 50, 1, 1]
    assert "100× faster" in tx.cost_sentence(result)
    assert "12-D: 0.5 deterministic vs 0.5 stochastic" in tx.diagnostic_sentence(result)
    assert [r["estimate"] for r in tx.intrinsic_rows(result)] == [13.5, 12.5, 9.0, 8.0]
    assert "13.5 in pixels" in tx.intrinsic_sentence(result)
    assert tx.gap_rows(result) == []                        # no gap study in this result


def test_score_figure_has_both_encodings_reference_lines_and_the_intrinsic_band():
    fig = mf.score_figure(_result({(12, "deterministic"): [10, 12], (12, "stochastic"): 12,
                                   (128, "deterministic"): 60, (128, "stochastic"): 30},
                                  {ch.FLOW: 100.0, "flow-velocity": 900.0}).record())
    names = {t.name for t in fig.data}
    assert {"chart, deterministic", "chart, stochastic", "reconstruction, deterministic", "flow matching",
            "flow matching, velocity prediction", "real held-out digits"} <= names
    det = next(t for t in fig.data if t.name == "chart, deterministic")
    assert list(det.x) == [12, 128] and list(det.y) == [11.0, 60.0]      # the FD panel: mean over seeds
    assert det.error_y.array[0] == pytest.approx(2 ** 0.5)               # one sd over seeds
    assert any(n.startswith("MNIST two-NN dimension (pixels): 12.5–13.7") for n in names)
    assert len(fig.layout.shapes) == 2 * 2                               # a band per space in each panel


# ---------------------------------------------------------------------------------------------
# the sample-grid figure (chartlib.report.mnist_figures)

def _fake_run(seed: int, steps=(0, 5, 10)) -> Run:
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(len(steps), 16, 784, generator=g) * torch.linspace(0.2, 1, len(steps))[:, None, None]
    return Run("chart", {}, list(steps), {"samples": frames}, {}, {}, {}, 1.0, "cpu")


def _decode(uri: str):
    from PIL import Image
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_digit_grid_tiles_the_digits():
    images = torch.zeros(6, 784)
    images[1] = 1.0
    pic = mf.digit_grid(images, columns=3, gap=2)
    assert pic.size == (3 * 30 + 2, 2 * 30 + 2) and pic.mode == "L"
    assert pic.getpixel((2 + 30 + 5, 2 + 5)) == 255 and pic.getpixel((2 + 5, 2 + 5)) == 0
    assert _decode(mf.png_data_uri(pic)).size == pic.size


def test_sample_grid_slider_restyles_every_panel_source():
    runs = {"a": _fake_run(0), "b": _fake_run(1)}
    fig = mf.sample_grid_figure(runs, "t", reference=torch.rand(16, 784))
    assert [t.type for t in fig.data] == ["image"] * 3
    slider = fig.layout.sliders[0]
    assert slider.active == 2 and [s.label for s in slider.steps] == ["0", "5", "10"]
    for f, step in enumerate(slider.steps):
        assert step.method == "restyle"                      # animate steps break static pages
        update, traces = step.args
        assert list(traces) == [1, 2]                        # the real-digit panel stays put
        assert len(update["source"]) == 2
        expected = mf.png_data_uri(mf.digit_grid(runs["a"].frames["samples"][f], 4))
        assert update["source"][0] == expected
    first, last = slider.steps[0].args[0]["source"][0], slider.steps[-1].args[0]["source"][0]
    assert first != last and fig.data[1].source == last
    with pytest.raises(ValueError, match="steps"):
        mf.sample_grid_figure({"a": _fake_run(0), "b": _fake_run(1, steps=(0, 4, 10))})
