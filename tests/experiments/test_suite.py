"""The standard suite spans what the issue asks for and builds valid catalogs."""

from __future__ import annotations

from dataclasses import replace

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


def test_registry_specs_and_policy_keys():
    from experiments.suite import (
        LEARNING_SUITE_VERSION,
        REFERENCES,
        SUITE_SPECS,
        get_spec,
        policy_keys,
    )

    assert {"standard", "smoke", "learning", "learning-smoke"} <= set(SUITE_SPECS)
    for name, spec in SUITE_SPECS.items():
        assert spec.name == name and spec.reference in REFERENCES and spec.description
        assert set(spec.profiles) <= set(RULE_PROFILES)
    learning = get_spec("learning")
    assert learning.version == LEARNING_SUITE_VERSION and learning.reference == "oracle"
    assert learning.market == "learning" and learning.belief_grid >= 9
    # every scenario of the learning suite has an uncertain elasticity and demand level
    assert all(s.elasticity_se >= 0.5 and s.level_se >= 0.3 for s in learning.scenarios)
    assert learning.policy_key("markdown") == "learning-markdown"
    assert get_spec("standard").policy_key("markdown") == "markdown"
    keys = policy_keys()
    assert len(keys) == len(set(keys)) and "learning-none" in keys
    with pytest.raises(ConfigError, match="reference"):
        replace(learning, reference="magic")


def test_learning_catalogs_carry_the_prior():
    from experiments.suite import PRIOR_ELASTICITY_SE, PRIOR_LEVEL_SE, learning_training_catalog

    s = get_suite("learning")[1]
    cat = s.catalog()
    assert cat.elasticity_se[0] == s.elasticity_se and cat.base_demand_se[0] == s.level_se
    # the standard suite's SKUs are known exactly
    assert get_suite()[0].catalog().elasticity_se[0] == 0.0
    train = learning_training_catalog(500, np.random.default_rng(0), profile="markdown")
    assert PRIOR_ELASTICITY_SE[0] <= train.elasticity_se.min()
    assert train.elasticity_se.max() <= PRIOR_ELASTICITY_SE[1]
    assert PRIOR_LEVEL_SE[0] <= train.base_demand_se.min()
    assert train.base_demand_se.max() <= PRIOR_LEVEL_SE[1]
