"""The standard suite spans what the issue asks for and builds valid catalogs."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.suite import (
    RULE_PROFILES,
    SUITE_VERSION,
    Scenario,
    get_suite,
    scenarios_by_profile,
    training_catalog,
)
from ingest.errors import ConfigError


def test_standard_suite_spans_the_required_ranges():
    suite = get_suite("standard")
    assert SUITE_VERSION.startswith("standard-v")
    assert len(suite) >= 30
    assert len({s.name for s in suite}) == len(suite)
    horizons = [s.horizon_weeks for s in suite]
    stocks = [s.initial_stock for s in suite]
    assert min(horizons) == 4 and max(horizons) == 26
    assert min(stocks) == 10 and max(stocks) == 5000
    assert {s.profile for s in suite} == set(RULE_PROFILES)
    assert {s.coupons for s in suite} == {True, False}
    assert {s.noise for s in suite} == {"poisson", "nb"}
    assert len({s.elasticity for s in suite}) >= 5
    assert min(s.cover for s in suite) < 0.5 < 1.0 < max(s.cover for s in suite)
    assert len({s.cost_ratio for s in suite}) >= 5


def test_scenario_catalog_matches_its_description():
    s = get_suite()[3]
    cat = s.catalog()
    assert cat.n_skus == 1
    expected = cat.base_demand[0] * s.horizon_weeks / cat.initial_stock[0]
    assert expected == pytest.approx(s.cover)
    assert cat.dispersion[0] == s.dispersion
    # DP-exact: no reference-price memory, no fatigue.
    assert cat.ref_price_sensitivity[0] == 0 and cat.fatigue_rate[0] == 0


def test_groups_and_smoke_suite():
    groups = scenarios_by_profile(get_suite())
    assert list(groups) == list(RULE_PROFILES)
    assert sum(len(g) for g in groups.values()) == len(get_suite())
    assert len(get_suite("smoke")) == 4


def test_bad_names_and_values_are_config_errors():
    with pytest.raises(ConfigError, match="suite 'nope'"):
        get_suite("nope")
    with pytest.raises(ConfigError, match="profile 'x'"):
        Scenario("a", "x", -2.0, 0.5, 12, 0.4, 100)
    with pytest.raises(ConfigError, match="elasticity"):
        Scenario("a", "none", 2.0, 0.5, 12, 0.4, 100)


def test_training_catalog_is_seeded_and_in_range():
    a = training_catalog(500, np.random.default_rng(1), profile="coupons")
    b = training_catalog(500, np.random.default_rng(1), profile="coupons")
    np.testing.assert_array_equal(a.elasticity, b.elasticity)
    assert a.elasticity.min() >= -4.0 and a.elasticity.max() <= -0.8
    assert a.initial_stock.min() >= 10 and a.initial_stock.max() <= 5000
    assert np.all(a.coupon_coef > 0)
    assert np.all(training_catalog(10, np.random.default_rng(1)).coupon_coef == 0)
