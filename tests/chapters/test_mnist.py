"""The MNIST chapter (``chartlib.chapters.mnist``): its settings and arms (fast, no training), then the
measurements the built book (ci profile) wrote for it.  Its tables, sentences, figures and claims are
tested in tests/report/test_mnist.py, its data set in tests/datasets/test_digits.py."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest

from chartlib.chapters import mnist as ch
from chartlib.chapters.registry import chapters
from chartlib.core.encoders import Deterministic, Gaussian
from chartlib.core.fields import KernelField
from chartlib.core.methods import ChartConfig, FlowConfig
from chartlib.report.claims.mnist import note_claims
from chartlib.runs.arms import Plan
from chartlib.runs.cache import run_key

SCORES = ch.SCORE_KEYS


# ---------------------------------------------------------------------------------------------
# settings and arms

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


def test_the_notes_dimensions_train_the_claim_seeds_too():
    s = dataclasses.replace(ch.PROFILES["ci"], seeds=(0, 1), claim_seeds=(1, 2, 5))
    arms = s.arms()
    for d in s.latent_dims:
        seeds = [c.schedule.seed for c in arms[ch.arm_key(d, "stochastic")].configs]
        assert seeds == ([0, 1, 2, 5] if d in ch.CLAIM_DIMS else [0, 1])
    assert ch.PROFILES["full"].seeds_at(12) == (0, 1, 2) and ch.PROFILES["full"].seeds_at(8) == (0, 1)
    for bad in (dict(fit_points=500), dict(mixture_components=(0,)), dict(noise_sigmas=(-0.1,)),
                dict(scale_ranks=(5000,)), dict(claim_seeds=(1, 1))):
        with pytest.raises(ValueError, match="is not allowed"):
            dataclasses.replace(ch.PROFILES["full"], **bad)


def test_arms_train_every_seed_with_one_schedule_and_distinct_cache_keys():
    s = dataclasses.replace(ch.PROFILES["ci"], seeds=(0, 3), gap_study=True)
    arms = s.arms()
    charts = [ch.arm_key(d, e) for d in s.latent_dims for e in s.encodings]
    assert list(arms) == [*s.flow_variants, *charts, "gap-steps", "gap-lambda", "gap-temperatures", "gap-batch"]
    assert ch.arm_key(12, "deterministic") == "d12-deterministic"
    for key, plan in arms.items():
        label, facts, cfgs = plan.label, plan.facts, plan.configs
        assert isinstance(plan, Plan) and label and facts["kind"] in ("flow", "chart", "gap")
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
    base = arms["d12-deterministic"].configs[0]
    longer = dataclasses.replace(base, schedule=dataclasses.replace(base.schedule, steps=2 * s.steps))
    assert arms["gap-steps"].configs == [longer]
    assert arms["gap-lambda"].configs == [dataclasses.replace(base, drift_weight=3 * s.drift_weight)]
    assert arms["gap-temperatures"].configs == [dataclasses.replace(base, field=KernelField(ch.GAP_TEMPERATURES, True))]
    bigger = dataclasses.replace(base.schedule, batch=ch.GAP_BATCH * s.batch)
    assert arms["gap-batch"].configs == [dataclasses.replace(base, schedule=bigger)]
    assert ch.FLOW_VARIANTS[ch.FLOW][1:3] == ("clean", "clean")           # the chapter's baseline predicts the digit
    keys = [run_key(c) for plan in arms.values() for c in plan.configs]
    assert len(set(keys)) == len(keys)
    assert "gap-steps" not in dataclasses.replace(s, gap_study=False).arms()



def test_mnist_settings_pass_the_precision_to_the_schedule():
    assert ch.MnistSettings(precision="bfloat16").schedule(0).precision == "bfloat16"
    assert ch.MnistSettings().flow_config().schedule.precision == "float32"
    with pytest.raises(ValueError, match="precision='half' is not allowed"):
        ch.MnistSettings(precision="half")


def test_list_settings_are_checked_by_the_common_checks():
    """Lists of choices and of integers: distinct, allowed, stored as tuples (``check_choices``, ``check_ints``)."""
    s = ch.MnistSettings(latent_dims=[12, 2], seeds=[1], encodings="stochastic", flow_variants=[])
    assert s.latent_dims == (12, 2) and s.seeds == (1,) and s.encodings == ("stochastic",) and s.flow_variants == ()
    with pytest.raises(ValueError, match=r"latent_dims\[1\]=0 is not allowed: latent_dims\[1\] must be an integer"):
        ch.MnistSettings(latent_dims=(12, 0))
    with pytest.raises(ValueError, match="encodings=.* is not allowed: encodings must be a list of distinct values "
                                         "from deterministic, stochastic"):
        ch.MnistSettings(encodings=("stochastic", "stochastic"))


# ---------------------------------------------------------------------------------------------
# the built book (ci profile)

@pytest.fixture(scope="module")
def chapter(built_book) -> dict:
    """The chapter's measurements in the session's built book (it is registered: listed in _toc.yml)."""
    assert "05_mnist" in [c.stem for c in chapters()]
    return json.loads((built_book / "metrics" / "05_mnist.json").read_text())


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
    assert all(chapter["arms"][k]["label"] == plan.label for k, plan in s.arms().items())
    n = chapter["n_eval"]
    assert n == s.n_eval and chapter["floor"]["n_samples"] == n
    assert all(len(chapter["arms"][k]["per_seed"]) == len(plan.configs) for k, plan in s.arms().items())
    rows = [chapter["floor"]] + [p for _, _, p in _seeds(chapter)] + [
        p["reconstruction"] for _, a, p in _seeds(chapter) if a["kind"] != "flow"]
    assert len(rows) == 1 + sum(len(p.configs) * (1 if p.facts["kind"] == "flow" else 2) for p in s.arms().values())
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
    for _, a, p in _seeds(chapter):
        cost = p["sampling"]
        assert cost["network_evaluations"] == (50 if a["kind"] == "flow" else 1)
        assert _finite(cost["samples_per_second"]) and cost["samples_per_second"] > 0
        assert _finite(p["train_seconds"]) and p["train_seconds"] > 0
    def sps(key):
        return chapter["arms"][key]["per_seed"][0]["sampling"]["samples_per_second"]

    assert sps(ch.arm_key(12, "deterministic")) > sps(ch.FLOW)


def test_claims_carry_rule_and_verdict(chapter):
    assert len(chapter["claims"]) == 6
    for c in chapter["claims"]:
        assert c["rule"] and c["evidence"]
        assert c["verdict"] in ("reproduced", "partly", "not reproduced")   # every arm was trained: all tested
    assert chapter["claims"] == note_claims(chapter)

# The chapter's page (digits render, the slider changes them, offline) is checked with every other
# page in tests/book/test_book.py.
