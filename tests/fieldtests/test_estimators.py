"""Estimators: calibrated on data where their assumptions hold, CUPED narrower on correlated
data, the sample-ratio check flags a 60/40 split of a 50/50 design."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fieldtests.assignment import random_assignments
from fieldtests.estimators import (
    _within_strata_permutations,
    cuped,
    cuped_adjusted,
    diff_in_means,
    sample_ratio_mismatch,
    standardized_mean_difference,
    stratified,
    stratified_cuped,
)
from ingest.errors import ConfigError, DataError

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


def _brute_force_p(y, x, treat, codes, perms, tau):
    """p-value of "the effect is tau everywhere" by recomputing the post-stratified CUPED
    estimate on the outcomes each re-randomization would show."""

    def stat(yy, tt):
        return stratified(cuped_adjusted(yy, x)[0], tt, codes).effect[0]

    observed = abs(stat(y, treat) - tau)
    y0 = y - tau * treat
    extreme = sum(abs(stat(y0 + tau * treat[p], treat[p]) - tau) >= observed - 1e-12 for p in perms)
    return (1 + extreme) / (1 + len(perms))


def test_randomization_interval_is_the_inverted_test_by_brute_force():
    # heavy-tailed outcomes, three strata of unequal size, an odd stratum
    rng = np.random.default_rng(1)
    codes = np.repeat([0, 1, 2], [14, 11, 15])
    x = rng.lognormal(size=codes.size)
    treat = random_assignments(codes, 1, rng)[0]
    y = 2 * x + rng.standard_t(2, size=codes.size) + 1.5 * treat
    est = stratified_cuped(y, x, treat, codes, n_permutations=199, seed=4)
    perms = _within_strata_permutations(codes, 199, np.random.default_rng(4))
    assert all((codes[p] == codes).all() for p in perms)  # labels move within strata only
    assert est.p_value[0] == pytest.approx(_brute_force_p(y, x, treat, codes, perms, 0.0))
    lo, hi, eps = float(est.low[0]), float(est.high[0]), 1e-6
    assert lo < est.effect[0] < hi
    for inside in (lo + eps, hi - eps, float(est.effect[0])):
        assert _brute_force_p(y, x, treat, codes, perms, inside) >= 0.05
    for outside in (lo - eps, hi + eps):
        assert _brute_force_p(y, x, treat, codes, perms, outside) < 0.05


def test_randomization_test_is_exact_in_a_a_tests_with_heavy_tails():
    # outcomes so heavy-tailed that a t interval is conservative; the test is exact anyway:
    # with P re-randomizations it rejects at floor(alpha (P + 1)) / (P + 1) = 4.5 % here
    rng = np.random.default_rng(5)
    n_tests, n_perm = 4000, 199
    codes = np.repeat(np.arange(4), 15)
    x = rng.lognormal(sigma=1.5, size=(n_tests, codes.size))
    y = x + rng.pareto(1.5, size=x.shape)
    treat = random_assignments(codes, n_tests, rng)
    est = stratified_cuped(y, x, treat, codes, n_permutations=n_perm, seed=2)
    level = np.floor(0.05 * (n_perm + 1)) / (n_perm + 1)
    half = stats.norm.ppf(0.9995) * np.sqrt(level * (1 - level) / n_tests)
    assert abs(est.rejects(0.05).mean() - level) < half
    assert np.all((est.low <= est.effect) & (est.effect <= est.high))


def test_randomization_needs_enough_permutations_for_the_level():
    with pytest.raises(ConfigError, match="n_permutations = 10"):
        stratified_cuped(np.arange(8.0), np.arange(8.0), np.arange(8) % 2 == 0,
                         np.zeros(8, int), n_permutations=10)  # fmt: skip
