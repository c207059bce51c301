"""The MNIST chapter: its data class, settings, claim rules and figure helpers (fast, no training),
then the measurements the built book (ci profile) wrote for it, and its page in Chromium."""
from __future__ import annotations

import base64
import dataclasses
import io
import json
import math
from pathlib import Path

import pytest
import torch

from chartlib import mnist
from chartlib import mnist_chapter as ch
from chartlib import mnist_claims as cl
from chartlib import mnist_figures as mf
from chartlib import mnist_text as tx
from chartlib.cache import run_key
from chartlib.encoders import Deterministic, Gaussian
from chartlib.evaluation import Arm, Result, spread
from chartlib.fields import KernelField
from chartlib.methods import ChartConfig, FlowConfig, Run

ROOT = Path(__file__).resolve().parents[1]
SCORES = ("fd", "kid_mean", "kid_std", "class_kl", "confidence")


# ---------------------------------------------------------------------------------------------
# the data class (a fake split stands in for the files, so these need no MNIST on disk)

@pytest.fixture
def fake_digits(monkeypatch):
    """Both splits replaced by small known tensors: train row i is filled with i / 100."""
    train = (torch.arange(100).float() / 100)[:, None].expand(100, 784).contiguous()
    test = torch.full((10, 784), 0.5)
    root = str(mnist.default_root())
    monkeypatch.setattr(mnist, "_SPLITS", {(True, root): train, (False, root): test})
    return train, test


def test_mnist_digits_samples_training_rows(fake_digits):
    train, _ = fake_digits
    data = mnist.MnistDigits()
    assert data.dim == 784
    x = data.sample(64, torch.Generator().manual_seed(0))
    assert x.shape == (64, 784) and x.dtype == torch.float32
    assert (x >= 0).all() and (x <= 1).all()
    rows = (x[:, 0] * 100).round().long()
    assert torch.equal(x, train[rows])                       # whole training digits, nothing mixed
    again = data.sample(64, torch.Generator().manual_seed(0))
    assert torch.equal(x, again)                             # the generator decides the draw
    x[:] = 7                                                 # the caller's copy, not the shared split
    assert train.max() < 1


def test_mnist_digits_test_split_and_validation(fake_digits):
    assert torch.equal(mnist.MnistDigits(train=False).sample(3), torch.full((3, 784), 0.5))
    with pytest.raises(ValueError, match="train"):
        mnist.MnistDigits(train="yes")
    with pytest.raises(dataclasses.FrozenInstanceError):
        mnist.MnistDigits().train = False


def test_mnist_digits_works_as_a_config_field_without_paths():
    for cfg in (ChartConfig(data=mnist.MnistDigits(), latent_dim=12),
                ChartConfig(data=mnist.MnistDigits(), latent_dim=12, encoder=Gaussian()),
                FlowConfig(data=mnist.MnistDigits())):
        fields = dataclasses.asdict(cfg)
        assert fields["data"] == {"train": True}
        assert "/" not in json.dumps(fields, default=str)
        assert run_key(cfg) == run_key(dataclasses.replace(cfg))
    assert run_key(FlowConfig(data=mnist.MnistDigits())) != run_key(FlowConfig(data=mnist.MnistDigits(train=False)))


@pytest.mark.real_data
def test_mnist_digits_on_the_real_files():
    x = mnist.MnistDigits().sample(500, torch.Generator().manual_seed(1))
    assert x.shape == (500, 784) and 0 <= x.min() and x.max() <= 1
    assert 0.08 < x.mean() < 0.18                            # MNIST's mean pixel is about 0.13
    assert mnist.digit_images(True) is mnist.digit_images(True)   # loaded once per process


# ---------------------------------------------------------------------------------------------
# settings, arms and the claim rules

def test_settings_validate_and_profiles_are_instances():
    assert set(ch.PROFILES) == {"ci", "full", "paper"}
    assert all(isinstance(s, ch.MnistSettings) for s in ch.PROFILES.values())
    full, paper = ch.PROFILES["full"], ch.PROFILES["paper"]
    for s in (full, paper):                               # the latent-dimension curve: >= 6 dims from 2 to 128
        assert len(s.latent_dims) >= 6 and min(s.latent_dims) == 2 and max(s.latent_dims) == 128
        assert {12, 32, 128} <= set(s.latent_dims) and s.encodings == ("deterministic", "stochastic")
        assert s.euler_steps == 50 and set(s.flow_variants) == set(ch.FLOW_VARIANTS)
    assert len(full.seeds) >= 2 and len(paper.seeds) >= 3 and paper.steps > full.steps
    for bad in (dict(latent_dims=()), dict(latent_dims=(12, 12)), dict(latent_dims=(0,)), dict(encodings=("vae",)),
                dict(n_eval=6000), dict(temperatures=()), dict(steps=0), dict(drift_weight=-1.0),
                dict(n_snapshots=1), dict(seeds=()), dict(seeds=(0, 0)), dict(seeds=(-1,)),
                dict(flow_variants=("flow", "flow")), dict(flow_variants=("ddpm",)), dict(lr_schedule="linear"),
                dict(encodings=(), flow_variants=()), dict(intrinsic_points=(2,)), dict(gap_study="yes")):
        with pytest.raises(ValueError, match="is not allowed|train nothing"):
            ch.MnistSettings(**bad)
    with pytest.raises(ValueError, match="encoding='vae' is not allowed"):
        full.chart_config(12, "vae")


def test_arms_train_every_seed_with_one_schedule_and_distinct_cache_keys():
    s = dataclasses.replace(ch.PROFILES["ci"], seeds=(0, 3), gap_study=True)
    arms = s.arms()
    charts = [ch.arm_key(d, e) for d in s.latent_dims for e in s.encodings]
    assert list(arms) == [*s.flow_variants, *charts, "gap-steps", "gap-lambda", "gap-temperatures"]
    assert ch.arm_key(12, "deterministic") == "d12-deterministic"
    for key, (label, facts, cfgs) in arms.items():
        assert label and facts["kind"] in ("flow", "chart", "gap")
        if facts["kind"] == "gap":
            assert [c.schedule.seed for c in cfgs] == [0] and facts["latent_dim"] == 12
            continue
        assert [c.schedule.seed for c in cfgs] == [0, 3]
        for seed, cfg in zip(s.seeds, cfgs):
            assert cfg.schedule == s.schedule(seed)
            assert cfg.schedule.n_eval == s.n_show                # evaluation samples come from the weights
        cfg = cfgs[0]
        if facts["kind"] == "flow":
            _, prediction, loss, mean = ch.FLOW_VARIANTS[key]
            assert isinstance(cfg, FlowConfig) and cfg.euler_steps == s.euler_steps
            assert (cfg.prediction, cfg.loss, cfg.logit_normal_mean) == (prediction, loss, mean)
        else:
            assert isinstance(cfg, ChartConfig)
            assert cfg.field == KernelField(s.temperatures, scale_free=True)
            assert isinstance(cfg.encoder, Gaussian) == key.endswith("stochastic")
            assert isinstance(cfg.encoder, Deterministic) == key.endswith("deterministic")
            assert key == ch.arm_key(cfg.latent_dim, facts["encoding"])
    base = arms["d12-deterministic"][2][0]
    assert arms["gap-steps"][2][0] == dataclasses.replace(base, schedule=dataclasses.replace(base.schedule, steps=2 * s.steps))
    assert arms["gap-lambda"][2][0] == dataclasses.replace(base, drift_weight=3 * s.drift_weight)
    assert arms["gap-temperatures"][2][0] == dataclasses.replace(base, field=KernelField(ch.GAP_TEMPERATURES, True))
    assert ch.FLOW_VARIANTS[ch.FLOW][1:3] == ("clean", "clean")           # the chapter's baseline predicts the digit
    keys = [run_key(c) for _, _, cfgs in arms.values() for c in cfgs]
    assert len(set(keys)) == len(keys)
    assert "gap-steps" not in dataclasses.replace(s, gap_study=False).arms()


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


def test_note_claims_follow_their_rules_in_every_seed():
    claims = ch.note_claims(_result(NOTE_LIKE))
    assert [c["verdict"] for c in claims] == ["reproduced"] * 6
    assert cl.mnist_note_claims(cl.fd_by_arm(_result(NOTE_LIKE).record())) == claims
    flat = {k: 10.0 for k in NOTE_LIKE}
    assert [c["verdict"] for c in ch.note_claims(_result(flat))] == ["not reproduced"] * 6
    only_det = {k: v for k, v in NOTE_LIKE.items() if k[1] == "deterministic"}
    verdicts = [c["verdict"] for c in ch.note_claims(_result(only_det))]
    assert verdicts.count("not tested") == 4 and "reproduced" in verdicts
    # two seeds: the note-like one and a flat one -> every rule holds in one seed of two
    two = {k: [v, 10.0] for k, v in NOTE_LIKE.items()}
    claims = ch.note_claims(_result(two))
    assert [c["verdict"] for c in claims] == ["partly"] * 6
    assert all(c["held"] == 1 and c["tested"] == 2 and "holds in 1 of 2" in c["evidence"] for c in claims)
    # only the note's dimensions count for its claims: a better 16-D chart does not refute "12-D is best"
    assert ch.note_claims(_result({**NOTE_LIKE, (16, "deterministic"): 1.0}))[0]["verdict"] == "reproduced"


def test_fd_by_arm_gives_every_seed_in_seed_order():
    rec = _result({(12, "deterministic"): [10, 13], (32, "stochastic"): 20}).record()
    rec["arms"]["d12-deterministic"]["per_seed"].reverse()
    assert cl.fd_by_arm(rec) == {(12, "deterministic"): [10.0, 13.0], (32, "stochastic"): [20.0]}


def test_book_claims_on_flow_matching_and_the_best_dimension():
    curve = {(2, "deterministic"): 50, (12, "deterministic"): 10, (128, "deterministic"): 40,
             (2, "stochastic"): 50, (16, "stochastic"): 11, (128, "stochastic"): 40}
    rec = ch.record(_result(curve, {ch.FLOW: 100.0, "flow-velocity": 900.0}), [])
    rows = {r["claim"]: r for r in cl.mnist_rows(rec)}
    fix = rows["Predicting the clean digit instead of the velocity makes flow matching on pixels work"]
    assert fix["verdict"] == "reproduced"
    best = rows["The best latent dimension lies near MNIST's intrinsic dimension"]
    assert best["verdict"] == "reproduced" and "deterministic 12-D" in best["value"]
    far = ch.record(_result({**curve, (2, "deterministic"): 1.0}, {ch.FLOW: 400.0, "flow-velocity": 900.0}), [])
    rows = {r["claim"]: r["verdict"] for r in cl.mnist_rows(far)}
    assert rows["The best latent dimension lies near MNIST's intrinsic dimension"] == "not reproduced"
    assert rows["Predicting the clean digit instead of the velocity makes flow matching on pixels work"] == "not reproduced"
    assert cl.best_dimensions({(2, "deterministic"): [5.0, 1.0], (12, "deterministic"): [2.0, 3.0]}) == \
        [{"deterministic": 12}, {"deterministic": 2}]


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
            "flow matching, velocity prediction", "real digits (floor)"} <= names
    det = next(t for t in fig.data if t.name == "chart, deterministic")
    assert list(det.x) == [12, 128] and list(det.y) == [11.0, 60.0]      # the FD panel: mean over seeds
    assert det.error_y.array[0] == pytest.approx(2 ** 0.5)               # one sd over seeds
    assert any(n.startswith("MNIST two-NN dimension (pixels): 12.5–13.7") for n in names)
    assert len(fig.layout.shapes) == 2 * 2                               # a band per space in each panel


# ---------------------------------------------------------------------------------------------
# the sample-grid figure

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


# ---------------------------------------------------------------------------------------------
# the built book (ci profile)

def _in_toc() -> bool:
    return "book/05_mnist" in (ROOT / "_toc.yml").read_text()


@pytest.fixture(scope="module")
def chapter_build(request) -> Path:
    """The session's built book (fixture ``built_book``), once the chapter is part of the book."""
    if not _in_toc():   # the build executes and renders only the notebooks listed in _toc.yml
        pytest.skip("book/05_mnist is not listed in _toc.yml, so the book build does not execute it")
    return request.getfixturevalue("built_book")


@pytest.fixture(scope="module")
def chapter(chapter_build) -> dict:
    return json.loads((chapter_build / "metrics" / "05_mnist.json").read_text())


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _seeds(chapter) -> list[tuple[str, dict, dict]]:
    """(arm key, arm, per-seed entry) for every trained run."""
    return [(k, a, p) for k, a in chapter["arms"].items() for p in a["per_seed"]]


def _settings(chapter) -> ch.MnistSettings:
    return ch.MnistSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in chapter["settings"].items()})


def test_every_arm_is_scored_on_the_same_number_of_images(chapter):
    s = _settings(chapter)
    assert chapter["profile"] == "ci"
    assert set(chapter["arms"]) == set(s.arms())
    assert all(chapter["arms"][k]["label"] == label for k, (label, _, _) in s.arms().items())
    n = chapter["n_eval"]
    assert n == s.n_eval and chapter["floor"]["n_samples"] == n
    assert all(len(a["per_seed"]) == len(cfgs) for a, (_, _, cfgs) in zip(chapter["arms"].values(), s.arms().values()))
    rows = [chapter["floor"]] + [p for _, _, p in _seeds(chapter)] + [
        p["reconstruction"] for _, a, p in _seeds(chapter) if a["kind"] != "flow"]
    assert len(rows) == 1 + sum(2 * len(cfgs) if f["kind"] != "flow" else len(cfgs) for _, f, cfgs in s.arms().values())
    for row in rows:
        assert row["n_samples"] == n
        assert set(SCORES) <= set(row["scores"])
        assert all(_finite(row["scores"][k]) for k in SCORES), row["scores"]
    for _, a, p in _seeds(chapter):      # one seed in ci: the summary is that seed's scores
        assert {k: a["summary"]["scores"][k]["mean"] for k in SCORES} == {k: p["scores"][k] for k in SCORES}
        assert a["summary"]["scores"]["fd"]["n"] == 1
    assert chapter["floor"]["scores"]["confidence"] > 0.95   # real digits look like digits


def test_reconstruction_rows_and_chart_diagnostics(chapter):
    s = _settings(chapter)
    charts = {(a["latent_dim"], a["encoding"]) for a in chapter["arms"].values() if a["kind"] == "chart"}
    assert charts == {(d, e) for d in s.latent_dims for e in s.encodings}
    assert chapter["arms"][ch.FLOW]["kind"] == "flow"
    for key, a, p in _seeds(chapter):
        if a["kind"] == "chart":
            assert key == ch.arm_key(a["latent_dim"], a["encoding"])
        if a["kind"] != "flow":
            assert _finite(p["recon_error"]) and _finite(p["latent_energy"])
            assert ("mean_sigma" in p) == (a["encoding"] == "stochastic")
            assert set(SCORES) <= set(a["summary"]["reconstruction"])
        else:
            assert "reconstruction" not in p and "reconstruction" not in a["summary"]


def test_intrinsic_dimension_is_measured_with_its_uncertainty(chapter):
    for space, dim in (("pixels", 784), ("features", 128)):
        est = chapter["intrinsic"][space]
        assert est["dim"] == dim and est["test"]["n_used"] == 10_000
        assert est["test"]["low"] < est["test"]["estimate"] < est["test"]["high"]
        assert 3 < est["test"]["estimate"] < 40                  # far below the ambient dimension
        assert [r["n_points"] for r in est["train"]] == list(_settings(chapter).intrinsic_points)


def test_classifier_is_accurate_on_the_real_test_set(chapter):
    assert chapter["classifier"]["test_accuracy"] >= 0.99
    assert len(chapter["classifier"]["sha256"]) == 64


def test_sampling_cost_one_call_against_fifty(chapter):
    for key, a, p in _seeds(chapter):
        cost = p["sampling"]
        assert cost["network_evaluations"] == (50 if a["kind"] == "flow" else 1)
        assert _finite(cost["samples_per_second"]) and cost["samples_per_second"] > 0
        assert _finite(p["train_seconds"]) and p["train_seconds"] > 0
    sps = lambda k: chapter["arms"][k]["per_seed"][0]["sampling"]["samples_per_second"]  # noqa: E731
    assert sps(ch.arm_key(12, "deterministic")) > sps(ch.FLOW)


def test_claims_carry_rule_and_verdict(chapter):
    assert len(chapter["claims"]) == 6
    for c in chapter["claims"]:
        assert c["rule"] and c["evidence"]
        assert c["verdict"] in ("reproduced", "partly", "not reproduced")   # every arm was trained: all tested
    assert chapter["claims"] == cl.mnist_note_claims(cl.fd_by_arm(chapter))

# The chapter's page (digits render, the slider changes them, offline) is checked with every other
# page in tests/test_book.py.
