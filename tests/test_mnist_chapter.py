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

from chartlib import claims as cl
from chartlib import mnist
from chartlib import mnist_chapter as ch
from chartlib import mnist_figures as mf
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
    assert set(ch.PROFILES) == {"ci", "full"}
    assert all(isinstance(s, ch.MnistSettings) for s in ch.PROFILES.values())
    full = ch.PROFILES["full"]
    assert full.latent_dims == (12, 32, 128) and full.encodings == ("deterministic", "stochastic")
    assert full.euler_steps == 50
    for bad in (dict(latent_dims=()), dict(latent_dims=(12, 12)), dict(latent_dims=(0,)), dict(encodings=("vae",)),
                dict(n_eval=6000), dict(temperatures=()), dict(steps=0), dict(drift_weight=-1.0),
                dict(n_snapshots=1)):
        with pytest.raises(ValueError, match="is not allowed"):
            ch.MnistSettings(**bad)
    with pytest.raises(ValueError, match="encoding='vae' is not allowed"):
        full.chart_config(12, "vae")


def test_arms_share_one_schedule_and_keep_the_cache_small():
    s = ch.PROFILES["ci"]
    arms = s.arms()
    assert list(arms)[0] == ch.FLOW and len(arms) == 1 + len(s.latent_dims) * len(s.encodings)
    assert ch.arm_key(12, "deterministic") == "d12-deterministic"
    assert set(arms) == {ch.FLOW} | {ch.arm_key(d, e) for d in s.latent_dims for e in s.encodings}
    for key, (label, cfg) in arms.items():
        assert label and cfg.schedule == s.schedule()
        assert cfg.schedule.n_eval == s.n_show                   # evaluation samples come from the weights
        if key == ch.FLOW:
            assert isinstance(cfg, FlowConfig) and cfg.euler_steps == s.euler_steps
        else:
            assert isinstance(cfg, ChartConfig)
            assert cfg.field == KernelField(s.temperatures, scale_free=True)
            assert isinstance(cfg.encoder, Gaussian) == key.endswith("stochastic")
            assert isinstance(cfg.encoder, Deterministic) == key.endswith("deterministic")
            assert cfg.encoder == Gaussian(s.init_log_scale) or not key.endswith("stochastic")
            assert key == ch.arm_key(cfg.latent_dim, "stochastic" if key.endswith("stochastic") else "deterministic")
    assert type(arms[ch.arm_key(128, "stochastic")][1].field) is KernelField
    assert len({run_key(cfg) for _, cfg in arms.values()}) == len(arms)


def _scores(fd: float) -> dict:
    return {**{k: 1.0 for k in SCORES}, "fd": fd}


def _result(fd: dict) -> Result:
    """A chapter Result with made-up scores: flow matching, then one chart arm per (latent dim, encoding)."""
    flow = [{"seed": 0, "scores": _scores(1.0), "n_samples": 100, "train_seconds": 2.0,
             "sampling": {"network_evaluations": 50, "samples_per_second": 10.0}}]
    arms = {ch.FLOW: Arm(ch.FLOW, "flow matching", [], flow, ch._summary(flow), {"kind": "flow"})}
    for (d, e), v in fd.items():
        p = [{"seed": 0, "scores": _scores(v), "n_samples": 100, "reconstruction": {"scores": _scores(v / 2),
                                                                                    "n_samples": 100},
              "recon_error": 3.0, "latent_energy": 0.5, "train_seconds": 1.0,
              "sampling": {"network_evaluations": 1, "samples_per_second": 1000.0},
              **({"mean_sigma": 0.3} if e == "stochastic" else {})}]
        arms[ch.arm_key(d, e)] = Arm(ch.arm_key(d, e), f"chart {d}-D, {e}", [], p, ch._summary(p),
                                     {"kind": "chart", "latent_dim": d, "encoding": e})
    measured = {"floor": {"scores": {k: 0.5 for k in SCORES}, "n_samples": 100}, "device": "cpu", "n_eval": 100}
    return Result(arms, measured, [0, 5, 10], 1.0)


def test_the_record_keeps_label_seeds_summary_and_extra():
    rec = _result({(12, "deterministic"): 10, (12, "stochastic"): 12}).record()
    assert list(rec["arms"]) == [ch.FLOW, "d12-deterministic", "d12-stochastic"]
    a = rec["arms"]["d12-stochastic"]
    assert a["label"] == "chart 12-D, stochastic" and a["kind"] == "chart" and a["latent_dim"] == 12
    assert a["encoding"] == "stochastic" and a["per_seed"][0]["mean_sigma"] == 0.3
    assert a["summary"]["scores"]["fd"] == spread([12.0]) and a["summary"]["reconstruction"]["fd"]["mean"] == 6.0
    assert "reconstruction" not in rec["arms"][ch.FLOW]["summary"]
    assert rec["floor"]["n_samples"] == 100 and rec["steps"] == [0, 5, 10] and rec["wall_seconds"] == 1.0
    json.dumps(rec)                                          # JSON-ready: no Run objects


def test_note_claims_follow_their_rules():
    note_like = {(12, "deterministic"): 10, (12, "stochastic"): 12, (32, "deterministic"): 15,
                 (32, "stochastic"): 14.5, (128, "deterministic"): 60, (128, "stochastic"): 30}
    claims = ch.note_claims(_result(note_like))
    assert [c["reproduced"] for c in claims] == [True] * 6
    assert cl.mnist_note_claims(cl.fd_by_arm(_result(note_like).record())) == claims
    flat = {k: 10.0 for k in note_like}
    assert [c["reproduced"] for c in ch.note_claims(_result(flat))] == [False] * 6
    only_det = {k: v for k, v in note_like.items() if k[1] == "deterministic"}
    verdicts = [cl.verdict(c["reproduced"]) for c in ch.note_claims(_result(only_det))]
    assert verdicts.count("not tested") == 4 and "reproduced" in verdicts


def test_fd_by_arm_reads_the_mean_over_seeds():
    rec = _result({(12, "deterministic"): 10, (32, "stochastic"): 20}).record()
    rec["arms"]["d12-deterministic"]["summary"]["scores"]["fd"]["mean"] = 11.5
    assert cl.fd_by_arm(rec) == {(12, "deterministic"): 11.5, (32, "stochastic"): 20.0}


def test_table_rows_of_the_chapter():
    result = _result({(12, "deterministic"): 10, (12, "stochastic"): 12})
    rows = ch.score_rows(result)
    assert [r["arm"] for r in rows] == ["real digits", "flow matching", "chart 12-D, deterministic",
                                        "chart 12-D, deterministic", "chart 12-D, stochastic", "chart 12-D, stochastic"]
    assert rows[3]["fd"] == 5.0 and "reconstructions" in rows[3]["images"]
    assert [r["nfe"] for r in ch.cost_rows(result)] == [50, 1, 1]
    diag = ch.diagnostic_rows(result)
    assert [r["mean_sigma"] for r in diag] == ["", 0.3]
    assert "100× faster" in ch.cost_sentence(result)
    assert "12-D: 0.5 deterministic vs 0.5 stochastic" in ch.diagnostic_sentence(result)


def test_score_figure_has_both_encodings_and_reference_lines():
    fig = mf.score_figure(_result({(12, "deterministic"): 10, (12, "stochastic"): 12,
                                   (128, "deterministic"): 60, (128, "stochastic"): 30}).record())
    names = {t.name for t in fig.data}
    assert {"chart, deterministic", "chart, stochastic", "flow matching", "real digits (floor)"} <= names
    det = next(t for t in fig.data if t.name == "chart, deterministic")
    assert list(det.x) == [12, 128] and list(det.y) == [10.0, 60.0]      # the FD panel, from the summaries


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


def test_every_arm_is_scored_on_the_same_number_of_images(chapter):
    s = ch.MnistSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in chapter["settings"].items()})
    assert chapter["profile"] == "ci"
    assert set(chapter["arms"]) == set(s.arms())
    assert all(chapter["arms"][k]["label"] == label for k, (label, _) in s.arms().items())
    n = chapter["n_eval"]
    assert n == s.n_eval and chapter["floor"]["n_samples"] == n
    assert all(len(a["per_seed"]) == 1 for a in chapter["arms"].values())
    rows = [chapter["floor"]] + [p for _, _, p in _seeds(chapter)] + [
        p["reconstruction"] for _, a, p in _seeds(chapter) if a["kind"] == "chart"]
    assert len(rows) == 1 + 1 + 2 * len(s.latent_dims) * len(s.encodings)
    for row in rows:
        assert row["n_samples"] == n
        assert set(SCORES) <= set(row["scores"])
        assert all(_finite(row["scores"][k]) for k in SCORES), row["scores"]
    for _, a, p in _seeds(chapter):      # one seed: the summary is that seed's scores
        assert {k: a["summary"]["scores"][k]["mean"] for k in SCORES} == {k: p["scores"][k] for k in SCORES}
        assert a["summary"]["scores"]["fd"]["n"] == 1
    assert chapter["floor"]["scores"]["confidence"] > 0.95   # real digits look like digits


def test_reconstruction_rows_and_chart_diagnostics(chapter):
    charts = {(a["latent_dim"], a["encoding"]) for a in chapter["arms"].values() if a["kind"] == "chart"}
    assert charts == {(d, e) for d in (12, 32, 128) for e in ("deterministic", "stochastic")}
    assert chapter["arms"][ch.FLOW]["kind"] == "flow"
    for key, a, p in _seeds(chapter):
        if a["kind"] == "chart":
            assert key == ch.arm_key(a["latent_dim"], a["encoding"])
            assert _finite(p["recon_error"]) and _finite(p["latent_energy"])
            assert ("mean_sigma" in p) == (a["encoding"] == "stochastic")
            assert set(SCORES) <= set(a["summary"]["reconstruction"])
        else:
            assert "reconstruction" not in p and "reconstruction" not in a["summary"]


def test_classifier_is_accurate_on_the_real_test_set(chapter):
    assert chapter["classifier"]["test_accuracy"] >= 0.99
    assert len(chapter["classifier"]["sha256"]) == 64


def test_sampling_cost_one_call_against_fifty(chapter):
    for key, _, p in _seeds(chapter):
        cost = p["sampling"]
        assert cost["network_evaluations"] == (50 if key == ch.FLOW else 1)
        assert _finite(cost["samples_per_second"]) and cost["samples_per_second"] > 0
        assert _finite(p["train_seconds"]) and p["train_seconds"] > 0
    sps = lambda k: chapter["arms"][k]["per_seed"][0]["sampling"]["samples_per_second"]  # noqa: E731
    assert sps(ch.arm_key(12, "deterministic")) > sps(ch.FLOW)


def test_claims_carry_rule_and_verdict(chapter):
    assert len(chapter["claims"]) == 6
    for c in chapter["claims"]:
        assert c["rule"] and c["evidence"]
        assert c["verdict"] in ("reproduced", "not reproduced")   # every arm was trained, so every claim is tested
    recomputed = cl.mnist_note_claims(cl.fd_by_arm(chapter))
    pairs = lambda cs: [(c["claim"], c["reproduced"]) for c in cs]  # noqa: E731
    assert pairs(chapter["claims"]) == pairs(recomputed)

# The chapter's page (digits render, the slider changes them, offline) is checked with every other
# page in tests/test_book.py.
