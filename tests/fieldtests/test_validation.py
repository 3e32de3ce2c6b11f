"""Validation on known truth, the bounded CI version: coverage and A/A rejection of the
analysis that matches the design, inside binomial bands for the number of tests run (the
full 1,000-test figures are in benchmarks/bench_abtest.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fieldtests.assignment import codes_of, stratum_labels
from fieldtests.synthetic import current_catalog
from fieldtests.validation import validate
from planning.schedule import Schedule
from simulator.synthetic import SyntheticConfig, generate_world
from tests.fieldtests.worlds import ladder

N_TESTS = 500
# 99 % binomial band around the nominal rate for N_TESTS tests: honest about what 500 tests
# can tell apart (the 93-97 % and 4-6 % bands are for 1,000)
Z = stats.norm.ppf(0.995)


def _band(p: float) -> tuple[float, float]:
    half = Z * np.sqrt(p * (1 - p) / N_TESTS)
    return p - half, p + half


@pytest.fixture(scope="module")
def world_parts():
    world = generate_world(SyntheticConfig(n_skus=300, n_weeks=30, seed=11))
    t = world.truth
    keep = np.flatnonzero((~t["goes_dead"].astype(bool)).to_numpy())
    velocity = t["base_demand_end"].to_numpy()[keep]
    cat = (
        current_catalog(world)
        .take(keep)
        .replace(initial_stock=np.maximum(np.round(8 * velocity), 2.0))
    )
    tier = np.where(velocity < np.median(velocity), "high", "medium")
    codes = codes_of(stratum_labels(cat.category, tier))
    return cat, codes


@pytest.mark.slow
@pytest.mark.parametrize(
    ("metric_name", "min_width_cut"),
    # profit: the pre-period revenue and the stock value explain much of it; sell-through
    # with stock set to 8 weeks of cover: the pre-period rate is nearly constant, so CUPED
    # can only do no harm
    [("profit", 0.05), ("sell_through", -0.02)],
)
def test_coverage_and_a_a_rejection_on_known_truth(world_parts, metric_name, min_width_cut):
    cat, codes = world_parts
    treat = ladder(cat.sku, 6)
    control = Schedule.constant(cat.sku, 6, 0.0)
    res = validate(cat, codes, treat, control, metric_name=metric_name, weeks=6,
                   n_episodes=100, n_tests=N_TESTS, seed=3)  # fmt: skip
    assert res.true_effect != 0
    lo, hi = _band(0.95)
    assert lo <= res.value("stratified_cuped", "coverage") <= hi
    assert lo <= res.value("stratified", "coverage") <= hi
    lo, hi = _band(0.05)
    assert lo <= res.value("stratified_cuped", "aa_rejection") <= hi
    assert lo <= res.value("stratified", "aa_rejection") <= hi
    assert res.cuped_width_reduction > min_width_cut
