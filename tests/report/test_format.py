"""Numbers in words (``chartlib.report.format``): one way everywhere."""
from chartlib.measure.scores import spread
from chartlib.report.format import mean_sd, number, percent, spread_text


def test_mean_sd_of_per_seed_values():
    assert mean_sd([0.25]) == "0.250"
    assert mean_sd([0.25], seeds=True) == "0.250 (1 seed)"
    assert mean_sd([1.0, 3.0], ".1f") == "2.0 ± 1.4"
    assert mean_sd([1.0, 3.0], ".3g", ".2g", seeds=True) == "2 ± 1.4 over 2 seeds"


def test_spread_text_and_percent():
    assert spread_text({"mean": 0.5, "std": 0.125}, ".2f") == "0.50 ± 0.12"
    assert spread_text(spread([2.0]), ".1f") == "2.0 ± 0.0"        # one seed: no spread
    assert percent(0.95) == "95 %" and percent(0.1) == "10 %" and percent(1) == "100 %"


def test_number_by_magnitude():
    assert number(1226.4) == "1226"             # the integer part is never rounded away, no "1.23e+03"
    assert number(0.0123) == "0.0123"
    assert number(12.34) == "12.3"
    assert number(-3.456) == "-3.46"
    assert number(0.64, 2) == "0.64" and number(2.0) == "2" and number(0) == "0"
    assert number(9.996) == "10"                # rounding up a digit keeps 3 significant digits
    assert number(999999.7) == "1000000"
    assert number(1.5e-5) == "1.5e-05"          # very small and very large: scientific
    assert number(2.5e6) == "2.5e+06"


def test_mean_sd_significant_digits_use_no_scientific_notation():
    assert mean_sd([1225.4, 1226.6], ".3g", ".1g") == "1226 ± 0.8"     # an FD of 1226 (was "1.23e+03 ± 0.8")
    assert mean_sd([1225.4, 1226.6], ".3g", ".2g") == "1226 ± 0.85"
    assert mean_sd([0.0122, 0.0124], ".3g", ".2g") == "0.0123 ± 0.00014"
    assert mean_sd([12.3, 12.38], ".3g", ".2g") == "12.3 ± 0.057"
    assert mean_sd([4321.0], ".3g", seeds=True) == "4321 (1 seed)"
    assert spread_text({"mean": 1226.4, "std": 0.6}, ".3g") == "1226 ± 0.6"
