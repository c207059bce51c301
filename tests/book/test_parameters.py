"""A bad parameter stops a notebook at its top with a message naming the parameter and the
allowed values, before anything is trained (``chartlib.book.notebook.setup``); ``save`` writes the
chapter's measurements.  The profiles themselves: tests/chapters/test_profiles.py."""
import json
from dataclasses import replace

import papermill
import pytest
import torch

from chartlib.book import notebook
from chartlib.chapters import mode_collapse, space_filling
from chartlib.common.paths import ROOT

BOOK = ROOT / "book"


def test_notebook_setup_applies_overrides_and_names_a_bad_one(capsys):
    settings, dev = notebook.setup(mode_collapse.PROFILES, "ci", "cpu", seeds=2, steps=None)
    assert settings == replace(mode_collapse.PROFILES["ci"], seeds=2) and str(dev) == "cpu"
    assert "profile ci; training on cpu" in capsys.readouterr().out
    with pytest.raises(ValueError, match="seeds=0 is not allowed"):
        notebook.setup(mode_collapse.PROFILES, "ci", "cpu", seeds=0)
    with pytest.raises(ValueError, match="device must be one of"):
        notebook.setup(mode_collapse.PROFILES, "ci", "tpu")


def test_notebook_save_writes_profile_device_and_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARTLIB_BUILD_DIR", str(tmp_path))
    s = space_filling.PROFILES["ci"]
    # nothing returned: as a notebook's last line, a path would be printed on the page
    assert notebook.save("03_space_filling", "ci", "cpu", s, {"arms": {}, "wall_seconds": 1.5}) is None
    m = json.loads((tmp_path / "metrics" / "03_space_filling.json").read_text())
    assert m["profile"] == "ci" and m["device"] == "cpu" and m["wall_seconds"] == 1.5
    assert m["settings"]["seeds"] == s.seeds and m["settings"]["thresholds"] == list(s.thresholds)


@pytest.mark.parametrize("notebook, params, message", [
    ("01_mode_collapse", {"profile": "fast"}, "profile='fast' is not allowed: profile must be one of ci, full"),
    ("01_mode_collapse", {"profile": "ci", "steps": -5}, "steps=-5 is not allowed: steps must be an integer >= 1"),
    ("02_chart_transport", {"profile": "ci", "temperature": 0},
     "temperature=0 is not allowed: temperature must be a number > 0"),
    ("02_chart_transport", {"profile": "ci", "device": "tpu"}, "device must be one of auto, cuda, mps, cpu"),
    pytest.param("02_chart_transport", {"profile": "ci", "device": "cuda"},
                 "device='cuda' is not available: no CUDA GPU is visible",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")),
    ("03_space_filling", {"profile": "ci", "seeds": 0}, "seeds=0 is not allowed"),
    ("05_mnist", {"profile": "ci", "latent_dims": [12, 0]}, "latent_dims[1]=0 is not allowed"),
    ("05_mnist", {"profile": "ci", "claim_seeds": [2, 2]}, "claim_seeds=[2, 2] is not allowed"),
    ("06_summary", {"profile": "fast"}, "profile='fast' is not allowed: profile must be one of ci, full"),
])
def test_bad_parameter_fails_at_the_top(tmp_path, monkeypatch, notebook, params, message):
    monkeypatch.setenv("CHARTLIB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(papermill.PapermillExecutionError) as err:
        papermill.execute_notebook(str(BOOK / f"{notebook}.ipynb"), str(tmp_path / "out.ipynb"), parameters=params,
                                   cwd=str(BOOK), kernel_name="python3", progress_bar=False)
    assert message in err.value.evalue
    assert err.value.exec_count <= 3        # the parameters cell, papermill's injected cell, the settings cell
    assert not (tmp_path / "cache").exists()  # nothing was trained
