"""Chapter 3's computed sentences (``chartlib.report.space_filling``) on made-up summaries."""
from types import SimpleNamespace

from chartlib.chapters.space_filling import PROFILES
from chartlib.report.space_filling import space_filling_text


def _spread(value: float) -> dict:
    return {"mean": value, "std": 0.0}


def _space_filling_sentences(samples_rate: float, recon_rate: float) -> str:
    s = PROFILES["ci"]
    hi = f"{s.thresholds[-1]:g}"
    summary = {"seeds": 2, "latent_dimension": _spread(2.0), "coverage": _spread(2.4),
               f"samples_off_surface@{hi}": _spread(samples_rate), f"recon_off_surface@{hi}": _spread(recon_rate),
               "samples_energy": _spread(0.27), "recon_energy": _spread(0.0)}
    result = SimpleNamespace(arms={"deterministic": SimpleNamespace(summary=summary)}, measured={"floor_energy": 0.0})
    return " ".join(space_filling_text(result, s))


def test_space_filling_text_states_no_ratio_when_no_reconstruction_leaves_the_surface():
    none_left = _space_filling_sentences(0.2, 0.0)
    assert "Not one reconstruction" in none_left and "×" not in none_left.split("Not one")[1]
    assert "4.0× less often" in _space_filling_sentences(0.2, 0.05)
    assert "nearly as often" in _space_filling_sentences(0.2, 0.15)
