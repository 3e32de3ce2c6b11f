"""The coupon's reach: reach 1 is the untargeted market bit for bit, reach 0 removes the
coupon (no lift, no cost), a share in between lifts and pays on that share only, and the
envs' bookkeeping, the fluid model and the exact DP all follow it."""

from __future__ import annotations

import numpy as np
import pytest

from agents.dp import solve
from agents.fluid import unit_margin
from envs.config import RulesConfig
from envs.context import PolicyContext
from envs.core import play_week
from envs.rules import initial_decision_state
from ingest.errors import DataError
from simulator.demand import Catalog
from simulator.market import (
    coupon_log_lift,
    expected_demand,
    expected_demand_grid,
    initial_state,
    paid_coupon_depth,
    step,
)

N = 6
COUPON = np.array([0.0, 0.1, 0.2, 0.1, 0.3, 0.15])
DISCOUNT = np.array([0.0, 0.0, 0.2, 0.3, 0.1, 0.4])


def catalog(reach=1.0) -> Catalog:
    return Catalog.build(
        n_skus=N,
        base_demand=np.linspace(2.0, 9.0, N),
        elasticity=np.linspace(-1.2, -3.5, N),
        coupon_coef=np.linspace(0.5, 4.0, N),
        dispersion=0.4,
        return_rate=0.1,
        list_price=3.0,
        unit_cost=1.0,
        initial_stock=40.0,
        coupon_reach=reach,
    )


def test_reach_defaults_to_one_and_is_validated():
    assert np.all(Catalog.build(n_skus=3).coupon_reach == 1.0)
    with pytest.raises(DataError, match="coupon_reach"):
        Catalog.build(n_skus=2, coupon_reach=[0.5, 1.2])
    frame = catalog(0.3).to_frame()
    assert np.all(Catalog.from_frame(frame).coupon_reach == 0.3)
    # a catalog built field by field without it (data frozen before reach) reaches everyone
    old = {f: v for f, v in vars(catalog(0.3)).items() if f != "coupon_reach"}
    assert np.all(Catalog(**old).coupon_reach == 1.0)


def test_reach_one_is_the_untargeted_market_bit_for_bit():
    cat = catalog(1.0)
    week = np.zeros(N, dtype=np.int64)
    lam = expected_demand(cat, week, DISCOUNT, COUPON)
    # the expression before reach existed, in its order of operations
    old = (
        cat.base_demand
        * cat.season_at(week)
        * np.exp(cat.elasticity * np.log(1.0 - DISCOUNT) + cat.coupon_coef * COUPON)
    )
    np.testing.assert_array_equal(lam, old)
    _, res = step(cat, initial_state(cat), DISCOUNT, COUPON, np.random.default_rng(3))
    sold_at_list = res.units_sold * cat.list_price
    np.testing.assert_array_equal(res.coupon_cost, sold_at_list * COUPON)
    np.testing.assert_array_equal(
        res.refunds, res.units_returned * cat.list_price * (1.0 - DISCOUNT - COUPON)
    )


def test_reach_zero_removes_the_coupon_lift_and_cost():
    cat = catalog(0.0)
    week = np.zeros(N, dtype=np.int64)
    np.testing.assert_array_equal(
        expected_demand(cat, week, DISCOUNT, COUPON), expected_demand(cat, week, DISCOUNT, 0.0)
    )
    _, res = step(cat, initial_state(cat), DISCOUNT, COUPON, np.random.default_rng(3))
    assert np.all(res.coupon_cost == 0.0)
    assert np.all(paid_coupon_depth(cat.coupon_coef, cat.coupon_reach, COUPON) == 0.0)


def test_partial_reach_lifts_and_pays_on_the_reached_share_only():
    r = 0.4
    cat = catalog(r)
    week = np.zeros(N, dtype=np.int64)
    lam = expected_demand(cat, week, DISCOUNT, COUPON)
    base = expected_demand(cat, week, DISCOUNT, 0.0)
    lift = np.exp(cat.coupon_coef * COUPON)
    np.testing.assert_allclose(lam, base * ((1 - r) + r * lift), rtol=1e-12)
    share = r * lift / ((1 - r) + r * lift)
    paid = paid_coupon_depth(cat.coupon_coef, cat.coupon_reach, COUPON)
    np.testing.assert_allclose(paid, COUPON * share, rtol=1e-12)
    assert np.all(paid <= COUPON) and np.all(paid[COUPON > 0] > 0)
    # the grid is the same market, column by column
    grid = expected_demand_grid(cat, week, DISCOUNT[:3], COUPON[:3])
    for j in range(3):
        np.testing.assert_allclose(
            grid[:, j], expected_demand(cat, week, DISCOUNT[j], COUPON[j]), rtol=1e-12
        )
    np.testing.assert_array_equal(coupon_log_lift(cat.coupon_coef, cat.coupon_reach, 0.0), 0.0)


def test_the_envs_bookkeeping_and_the_fluid_margin_follow_reach():
    rules = RulesConfig(discount_levels=(0.0, 0.2), coupon_levels=(0.0, 0.2))
    actions = np.full(N, rules.encode(0, 1))  # no discount, the coupon
    out = {}
    for r in (1.0, 0.5, 0.0):
        cat = catalog(r)
        dec = initial_decision_state(cat, 8, rules)
        week = play_week(
            cat, rules, dec, initial_state(cat), actions, np.random.default_rng(0),
            scale=np.ones(N),
        )  # fmt: skip
        given = week.margin_given_away
        np.testing.assert_allclose(given, week.result.coupon_cost, rtol=1e-12)
        ctx = PolicyContext(cat, dec, initial_state(cat), rules, 8)
        out[r] = unit_margin(ctx)[:, 1]
    assert np.all(out[1.0] < out[0.5]) and np.all(out[0.5] < out[0.0])
    np.testing.assert_allclose(out[0.0], unit_margin(ctx)[:, 0], rtol=1e-12)


@pytest.mark.parametrize("reach", [0.0, 0.5])
def test_the_dp_honours_reach(reach):
    one = dict(
        base_demand=2.0, initial_stock=30, elasticity=-2.0, coupon_coef=3.0, unit_cost=0.4,
        dispersion=0.2, salvage_value_per_unit=0.0,
    )  # fmt: skip
    coupons = RulesConfig(discount_levels=(0.0, 0.2, 0.4), coupon_levels=(0.0, 0.2))
    no_coupons = RulesConfig(discount_levels=(0.0, 0.2, 0.4))
    full = solve(Catalog.build(n_skus=1, **one), coupons, 8).value
    part = solve(Catalog.build(n_skus=1, coupon_reach=reach, **one), coupons, 8).value
    without = solve(Catalog.build(n_skus=1, **one), no_coupons, 8).value
    assert full > without  # the coupon is worth using when it reaches everyone
    if reach == 0.0:  # a coupon that reaches nobody is the same as none
        assert part == pytest.approx(without, rel=1e-12)
    else:
        assert without < part < full
