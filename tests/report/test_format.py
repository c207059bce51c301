"""Numbers in words (``chartlib.report.format``): one way everywhere."""
from chartlib.measure.scores import spread
from chartlib.report.format import mean_sd, percent, spread_text


def test_mean_sd_of_per_seed_values():
    assert mean_sd([0.25]) == "0.250"
    assert mean_sd([0.25], seeds=True) == "0.250 (1 seed)"
    assert mean_sd([1.0, 3.0], ".1f") == "2.0 ± 1.4"
    assert mean_sd([1.0, 3.0], ".3g", ".2g", seeds=True) == "2 ± 1.4 over 2 seeds"


def test_spread_text_and_percent():
    assert spread_text({"mean": 0.5, "std": 0.125}, ".2f") == "0.50 ± 0.12"
    assert spread_text(spread([2.0]), ".1f") == "2.0 ± 0.0"        # one seed: no spread
    assert percent(0.95) == "95 %" and percent(0.1) == "10 %" and percent(1) == "100 %"
