"""The observation: documented fields, bounds, and values for states worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from envs.config import RulesConfig
from envs.observation import (
    OBS_DIM,
    OBS_FIELDS,
    OBS_HIGH,
    OBS_LOW,
    OBS_NAMES,
    build_observation,
    season_cumsum,
    season_window_mean,
)
from envs.rules import advance, initial_decision_state
from simulator.demand import SEASON_PERIOD, Catalog
from simulator.market import initial_state


def test_fields_are_documented_and_bounded() -> None:
    assert len(set(OBS_NAMES)) == OBS_DIM == len(OBS_FIELDS)
    assert (OBS_LOW < OBS_HIGH).all()
    assert all(f[3] for f in OBS_FIELDS)
    import envs.observation as module

    for name in OBS_NAMES:  # every field appears in the module's table
        assert name in (module.__doc__ or "")


def test_values_at_the_start_of_a_plan() -> None:
    rules = RulesConfig(coupon_levels=(0.0, 0.2), coupon_budget_weeks=3)
    cat = Catalog.build(
        n_skus=2,
        list_price=10.0,
        unit_cost=[4.0, 6.0],
        base_demand=[5.0, 50.0],
        elasticity=[-2.0, -20.0],
        initial_stock=[100.0, 10.0],
        salvage_value_per_unit=1.0,
        coupon_coef=1.5,
        risk_score=[np.nan, 0.7],
    )
    dec = initial_decision_state(cat, 10, rules)
    obs = build_observation(cat, dec, initial_state(cat), rules, horizon_weeks=10)
    assert obs.dtype == np.float32 and obs.shape == (2, OBS_DIM)
    row = dict(zip(OBS_NAMES, obs[0], strict=True))
    assert row["weeks_left_frac"] == 1.0
    assert row["weeks_left_26"] == pytest.approx(10 / 26)
    assert row["stock_ratio"] == 1.0 and row["depth"] == 0.0
    assert row["weeks_since_change"] == 1.0 and row["last_sales_rate"] == 0.0
    assert row["ref_price"] == 1.0 and row["fatigue"] == 0.0
    assert row["elasticity"] == pytest.approx(-0.5)
    assert row["demand_cover"] == pytest.approx(5.0 * 10 / 100)
    assert row["cost_ratio"] == pytest.approx(0.4) and row["salvage_ratio"] == pytest.approx(0.1)
    assert row["risk_score"] == 0.0  # NaN -> 0
    assert row["coupon_lift"] == pytest.approx(1.5 * 0.2)
    assert row["coupon_weeks_share"] == pytest.approx(3 / 10)
    other = dict(zip(OBS_NAMES, obs[1], strict=True))
    assert other["elasticity"] == -3.0  # clipped to the bound
    assert other["demand_cover"] == 5.0  # 50 * 10 / 10, clipped
    assert other["risk_score"] == pytest.approx(0.7)


def test_values_move_with_the_state() -> None:
    rules = RulesConfig()
    cat = Catalog.build(n_skus=1, initial_stock=40.0, base_demand=2.0)
    dec = initial_decision_state(cat, 8, rules)
    dec = advance(rules, dec, np.array([3]), np.array([10.0]))
    obs = build_observation(
        cat, dec, initial_state(cat), rules, horizon_weeks=8, last_units_sold=np.array([10.0])
    )
    row = dict(zip(OBS_NAMES, obs[0], strict=True))
    assert row["weeks_left_frac"] == pytest.approx(7 / 8)
    assert row["stock_ratio"] == pytest.approx(0.75)
    assert row["depth"] == pytest.approx(0.3)
    assert row["weeks_since_change"] == pytest.approx(1 / 13)
    assert row["last_sales_rate"] == pytest.approx(10 * 8 / 40)


def test_observations_stay_in_bounds_for_wild_catalogs() -> None:
    rng = np.random.default_rng(0)
    n = 500
    cat = Catalog.build(
        n_skus=n,
        base_demand=rng.exponential(50, n),
        elasticity=-rng.exponential(3, n),
        initial_stock=rng.integers(0, 5, n).astype(float),
        unit_cost=rng.exponential(3, n),
        season=rng.exponential(2, (n, SEASON_PERIOD)),
        coupon_coef=rng.exponential(5, n),
        salvage_value_per_unit=rng.exponential(2, n),
    )
    rules = RulesConfig(coupon_levels=(0.0, 0.2))
    obs = build_observation(
        cat,
        initial_decision_state(cat, 150, rules),
        initial_state(cat),
        rules,
        horizon_weeks=150,
        last_units_sold=rng.exponential(100, n),
    )
    assert np.isfinite(obs).all()
    assert (obs >= OBS_LOW).all() and (obs <= OBS_HIGH).all()


def test_season_window_mean_wraps_around_the_year() -> None:
    season = np.arange(SEASON_PERIOD, dtype=float)[None, :].repeat(3, axis=0)
    cat = Catalog.build(n_skus=3, season=season)
    week = np.array([50, 10, 3])
    n_weeks = np.array([4, 60, 0])
    now, mean = season_window_mean(season_cumsum(cat), week, n_weeks)
    np.testing.assert_allclose(now, [50, 10, 3])
    expected_1 = (season[1].sum() + season[1, 10:18].sum()) / 60
    np.testing.assert_allclose(mean, [(50 + 51 + 0 + 1) / 4, expected_1, 3])
