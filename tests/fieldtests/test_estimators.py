"""Estimators: calibrated on data where their assumptions hold, CUPED narrower on correlated
data, the sample-ratio check flags a 60/40 split of a 50/50 design."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fieldtests.assignment import random_assignments
from fieldtests.estimators import (
    cuped,
    diff_in_means,
    sample_ratio_mismatch,
    standardized_mean_difference,
    stratified,
    stratified_cuped,
)
from ingest.errors import DataError

N_TESTS, N_UNITS = 2000, 120


@pytest.fixture(scope="module")
def normal_tests():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(N_TESTS, N_UNITS))
    y = 0.8 * x + 0.6 * rng.normal(size=x.shape)  # corr(x, y) = 0.8
    codes = np.repeat(np.arange(4), N_UNITS // 4)
    treat = random_assignments(codes, N_TESTS, rng)
    return y, x, treat, codes


def _band(p: float) -> float:
    """Half-width of a 99.9 % binomial band around ``p`` for N_TESTS tests."""
    return stats.norm.ppf(0.9995) * np.sqrt(p * (1 - p) / N_TESTS)


def test_one_test_matches_scipy_welch():
    rng = np.random.default_rng(0)
    y = rng.normal(size=40) + np.r_[np.ones(20), np.zeros(20)]
    treat = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    est = diff_in_means(y, treat)
    ref = stats.ttest_ind(y[treat], y[~treat], equal_var=False)
    assert est.p_value[0] == pytest.approx(ref.pvalue, rel=1e-9)
    assert est.effect[0] == pytest.approx(y[treat].mean() - y[~treat].mean())


@pytest.mark.parametrize("name", ["difference", "cuped", "stratified", "stratified_cuped"])
def test_a_a_rejection_and_coverage_at_the_nominal_rates(normal_tests, name):
    y, x, treat, codes = normal_tests
    shift = 0.3
    estimates = {
        "difference": lambda v: diff_in_means(v, treat),
        "cuped": lambda v: cuped(v, x, treat),
        "stratified": lambda v: stratified(v, treat, codes),
        "stratified_cuped": lambda v: stratified_cuped(v, x, treat, codes),
    }[name]
    aa = estimates(y).rejects(0.05).mean()
    ab = estimates(np.where(treat, y + shift, y))
    assert abs(aa - 0.05) < _band(0.05)
    assert abs(ab.covers(shift).mean() - 0.95) < _band(0.95)


def test_cuped_shrinks_the_interval_by_sqrt_one_minus_rho_squared(normal_tests):
    y, x, treat, _ = normal_tests
    ratio = cuped(y, x, treat).width.mean() / diff_in_means(y, treat).width.mean()
    assert ratio == pytest.approx(np.sqrt(1 - 0.8**2), rel=0.05)
    # and its estimates vary less across tests, not only its stated width
    assert cuped(y, x, treat).effect.std() < 0.7 * diff_in_means(y, treat).effect.std()


def test_cuped_with_an_unrelated_covariate_changes_little(normal_tests):
    y, _, treat, _ = normal_tests
    noise = np.random.default_rng(1).normal(size=y.shape)
    ratio = cuped(y, noise, treat).width.mean() / diff_in_means(y, treat).width.mean()
    assert 0.98 < ratio < 1.03


def test_sample_ratio_mismatch_flags_60_40_of_a_50_50_design():
    assert sample_ratio_mismatch(600, 400, 0.5).flagged
    ok = sample_ratio_mismatch(505, 495, 0.5)
    assert not ok.flagged and ok.p_value > 0.5
    assert not sample_ratio_mismatch(600, 400, 0.6).flagged
    with pytest.raises(DataError, match="expected treatment share"):
        sample_ratio_mismatch(1, 1, 1.0)


def test_standardized_mean_difference():
    treat = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    x = np.r_[np.full(25, 1.0), np.full(25, 3.0), np.full(25, 0.0), np.full(25, 2.0)]
    assert standardized_mean_difference(x, treat) == pytest.approx(1.0 / np.sqrt(50 / 49))
    assert standardized_mean_difference(np.ones(100), treat) == 0.0


def test_an_arm_too_small_is_refused():
    with pytest.raises(DataError, match="at least 2 units"):
        diff_in_means(np.arange(5.0), np.array([1, 0, 0, 0, 0], bool))
