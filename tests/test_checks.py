"""The shared argument checks: what each accepts, and an error naming the argument for everything else."""

import math

import numpy as np
import pytest

from deepseek._core.checks import check_choice, check_flag, check_int, check_number
from deepseek._core.errors import InvalidArgumentError


@pytest.mark.parametrize("value", [True, "3", None, math.nan, math.inf, [1], 10**400])
def test_check_number_refuses_what_is_not_a_finite_real(value):
    with pytest.raises(InvalidArgumentError, match=r"^rate: got .*, expected a finite number$"):
        check_number(value, "rate")


def test_check_number_bounds_are_inclusive_or_exclusive_as_named():
    assert check_number(0, "x", minimum=0) == 0.0 and isinstance(check_number(0, "x", minimum=0), float)
    assert check_number(np.float32(0.5), "x", above=0, below=1) == 0.5
    for value, bounds in [(0, {"above": 0}), (1, {"below": 1}), (-1e-9, {"minimum": 0}), (2.5, {"maximum": 2})]:
        with pytest.raises(InvalidArgumentError, match="x: got"):
            check_number(value, "x", **bounds)
    with pytest.raises(InvalidArgumentError, match=r"expected a finite number >= 0 < 1$"):
        check_number(1, "x", minimum=0, below=1)


def test_check_int_returns_an_int_and_refuses_floats_and_bools():
    assert check_int(np.int64(3), "n", minimum=1) == 3 and type(check_int(np.int64(3), "n")) is int
    for value in (3.0, True, "3"):
        with pytest.raises(InvalidArgumentError, match=r"n: got .*, expected an integer >= 1$"):
            check_int(value, "n", minimum=1)
    with pytest.raises(InvalidArgumentError, match=r"expected an integer <= 4, or None$"):
        check_int(5, "n", maximum=4, optional=True)
    assert check_int(None, "n", optional=True) is None
    with pytest.raises(InvalidArgumentError, match="n: got None"):
        check_int(None, "n")


def test_expected_replaces_the_generated_description():
    with pytest.raises(InvalidArgumentError, match=r"^keep: got 0, expected a fraction of channels in \(0, 1\]$"):
        check_number(0, "keep", above=0, maximum=1, expected="a fraction of channels in (0, 1]")


def test_check_flag_accepts_only_bools():
    assert check_flag(False, "inplace") is False
    for value in (0, 1, "true", None):
        with pytest.raises(InvalidArgumentError, match=r"^inplace: got .*, expected True or False$"):
            check_flag(value, "inplace")


def test_check_choice_matches_exactly():
    assert check_choice("l1", "importance", ("l1", "l2")) == "l1"
    for value in ("L1", None, ["l1"], True):
        with pytest.raises(InvalidArgumentError, match=r"importance: got .*, expected one of \['l1', 'l2'\]"):
            check_choice(value, "importance", {"l1", "l2"})
    with pytest.raises(InvalidArgumentError, match="bits: got True"):
        check_choice(True, "bits", (1, 4, 8))
    assert check_choice(4, "bits", (1, 4, 8)) == 4


def test_check_int_compares_large_integers_exactly():
    assert check_int(10**30, "seed", minimum=0) == 10**30
    with pytest.raises(InvalidArgumentError, match="end_step: got 9007199254740993"):
        check_int(2**53 + 1, "end_step", maximum=2**53)
