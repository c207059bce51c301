"""The parameter checks (``chartlib.common.checks``): each returns the value as the type it checks, or
raises a ValueError of the form "name=value is not allowed: name must be ..."."""
import math

import pytest

from chartlib.common.checks import (
    check_bool,
    check_choice,
    check_choices,
    check_float,
    check_floats,
    check_int,
    check_ints,
)


def _refused(call, message: str):
    with pytest.raises(ValueError, match=message):
        call()


def test_check_int():
    assert check_int("steps", 3, 1) == 3 and check_int("steps", 10, 1, 10) == 10
    _refused(lambda: check_int("steps", 0, 1), "steps=0 is not allowed: steps must be an integer >= 1")
    _refused(lambda: check_int("depth", 17, 1, 16),
             "depth=17 is not allowed: depth must be an integer between 1 and 16")
    for bad in (2.0, True, "3", None):
        _refused(lambda bad=bad: check_int("n", bad, 1), "n=.* is not allowed")


def test_check_float_bounds_open_and_closed():
    assert check_float("lr", 1, 0) == 1.0 and type(check_float("lr", 1, 0)) is float
    _refused(lambda: check_float("lr", 0, 0), r"lr=0 is not allowed: lr must be a number > 0$")
    assert check_float("w", 0, 0, low_open=False) == 0.0
    _refused(lambda: check_float("w", -0.1, 0, low_open=False), "w must be a number >= 0")
    assert check_float("p", 1, 0, 1) == 1.0                                    # closed above by default
    _refused(lambda: check_float("p", 1.5, 0, 1), "p must be a number > 0 and <= 1")
    _refused(lambda: check_float("floor", 1, 0, 1, low_open=False, high_open=True),
             "floor=1 is not allowed: floor must be a number >= 0 and < 1")
    assert check_float("floor", 0.999, 0, 1, high_open=True) == 0.999
    for bad in (math.nan, True, "1", None):
        _refused(lambda bad=bad: check_float("x", bad, 0), "x=.* is not allowed")


def test_check_floats_takes_one_number_as_one_value():
    assert check_floats("temperatures", (0.1, 1)) == (0.1, 1.0)
    assert check_floats("temperatures", [0.5]) == (0.5,) and check_floats("temperatures", 0.05) == (0.05,)
    assert check_floats("offsets", (-1.0,), low=-2) == (-1.0,)
    _refused(lambda: check_floats("temperatures", ()), r"temperatures=\(\) is not allowed: temperatures must be a "
                                                         "non-empty list of numbers > 0")
    _refused(lambda: check_floats("temperatures", (0.05, -1.0)), r"temperatures\[1\]=-1.0 is not allowed")
    _refused(lambda: check_floats("temperatures", None), "temperatures=None is not allowed")


def test_check_bool_and_check_choice():
    assert check_bool("gap_study", False) is False
    for bad in (0, 1, "yes", None):
        _refused(lambda bad=bad: check_bool("gap_study", bad), "gap_study=.* is not allowed: gap_study must be True "
                                                                "or False")
    assert check_choice("mask", "exclude", ("additive", "exclude")) == "exclude"
    _refused(lambda: check_choice("mask", "multiply", ("additive", "exclude")),
             "mask='multiply' is not allowed: mask must be one of 'additive', 'exclude'")


def test_check_choices_distinct_values_from_the_allowed_ones():
    allowed = ("deterministic", "stochastic")
    assert check_choices("encodings", ["stochastic", "deterministic"], allowed) == ("stochastic", "deterministic")
    assert check_choices("encodings", "stochastic", allowed) == ("stochastic",)     # one string is one value
    assert check_choices("encodings", (), allowed, empty=True) == ()
    _refused(lambda: check_choices("encodings", (), allowed),
             r"encodings=\(\) is not allowed: encodings must be a non-empty list of distinct values from "
             "deterministic, stochastic")
    _refused(lambda: check_choices("encodings", ("vae",), allowed), "encodings=.* is not allowed")
    _refused(lambda: check_choices("encodings", ("stochastic", "stochastic"), allowed), "encodings=.* is not allowed")


def test_check_ints_distinct_integers_in_range():
    assert check_ints("latent_dims", [12, 2], 1, 784) == (12, 2)
    _refused(lambda: check_ints("latent_dims", (), 1, 784), r"latent_dims=\(\) is not allowed: latent_dims must be a "
                                                             "non-empty list of distinct integers between 1 and 784")
    _refused(lambda: check_ints("latent_dims", 12, 1, 784), "latent_dims=12 is not allowed")
    _refused(lambda: check_ints("seeds", (0, 0), 0, 9), r"seeds=\(0, 0\) is not allowed")
    _refused(lambda: check_ints("latent_dims", (12, 0), 1, 784), r"latent_dims\[1\]=0 is not allowed: latent_dims\[1\] "
                                                                  "must be an integer between 1 and 784")
    _refused(lambda: check_ints("seeds", (1, 2.5), 0, 9), r"seeds\[1\]=2.5 is not allowed")


@pytest.mark.xfail(strict=True, raises=TypeError,
                   reason="chartlib bug: check_choices and check_ints call tuple()/set() on the value before checking "
                          "it, so a value that is not a list (5, 2.5, None) or holds unhashable items raises TypeError "
                          "instead of the ValueError naming the parameter")
@pytest.mark.parametrize("call", [lambda: check_choices("encodings", 5, ("stochastic",)),
                                  lambda: check_choices("encodings", None, ("stochastic",)),
                                  lambda: check_ints("seeds", 2.5, 0, 9),
                                  lambda: check_ints("seeds", [[1]], 0, 9)],
                         ids=["choices-int", "choices-none", "ints-float", "ints-unhashable"])
def test_a_value_that_is_not_a_list_is_refused_by_name(call):
    _refused(call, "is not allowed")
