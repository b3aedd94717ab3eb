import pytest
from scipy.stats import binomtest

from deepseek._core.agreement import agreement_interval


@pytest.mark.parametrize("agreeing,total", [(6, 8), (8, 8), (0, 10), (16, 18), (183, 184), (1, 1)])
def test_the_interval_is_wilsons_as_scipy_computes_it(agreeing, total):
    expected = binomtest(agreeing, total).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = agreement_interval(agreeing, total)
    assert low == pytest.approx(expected.low, abs=1e-3) and high == pytest.approx(expected.high, abs=1e-3)


def test_a_few_samples_give_a_wide_interval_and_none_gives_no_information():
    assert agreement_interval(8, 8)[0] < 0.7  # 8 of 8 agreeing does not prove 95 %
    assert agreement_interval(184, 184)[0] > 0.97
    assert agreement_interval(0, 0) == (0.0, 1.0)
