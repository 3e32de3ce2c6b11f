"""The plan checks: no demand at any allowed price, net prices below cost."""

from __future__ import annotations

import numpy as np

from envs.config import RulesConfig
from planning.diagnostics import (
    deepest_allowed_schedule,
    net_price_check,
    sells_nothing,
    without_markdown,
)
from planning.outcomes import simulate_schedule
from planning.schedule import Schedule
from simulator.demand import Catalog


def test_deepest_allowed_respects_max_discount_and_margin_floor():
    cat = Catalog.build(n_skus=3, list_price=[2.0, 2.0, 10.0], unit_cost=[1.0, 1.9, 1.0])
    rules = RulesConfig(discount_levels=(0.0, 0.2, 0.5, 0.7), coupon_levels=(0.0, 0.1))
    free = deepest_allowed_schedule(cat, rules, 4)
    assert np.allclose(free.discount, 0.7) and np.allclose(free.coupon, 0.1)
    capped = deepest_allowed_schedule(cat, RulesConfig(discount_levels=(0.0, 0.2, 0.5, 0.7),
                                                       max_discount=0.5), 4)  # fmt: skip
    assert np.allclose(capped.discount, 0.5)
    floor = deepest_allowed_schedule(
        cat, RulesConfig(discount_levels=(0.0, 0.2, 0.5, 0.7), coupon_levels=(0.0, 0.1),
                         margin_floor=0.0), 4)  # fmt: skip
    # net >= cost: 2.00 x 0.5 = 1.00 >= 1.00 (no coupon on top); 1.9 allows nothing; 10 all.
    assert floor.discount[:, 0].tolist() == [0.5, 0.0, 0.7]
    assert floor.coupon[:, 0].tolist() == [0.0, 0.0, 0.1]
    assert not net_price_check(floor, cat).below_cost.any()


def test_sells_nothing_and_no_markdown():
    cat = Catalog.build(n_skus=3, base_demand=[0.0, 1e-9, 2.0], initial_stock=10.0)
    deep = simulate_schedule(cat, Schedule.constant(cat.sku, 6, 0.7), n_episodes=50, seed=1)
    assert sells_nothing(deep).tolist() == [True, True, False]
    plan = Schedule.constant(cat.sku, 6, 0.3)
    fixed = without_markdown(plan, sells_nothing(deep))
    assert np.asarray(fixed.discount)[:2].max() == 0.0 and np.allclose(fixed.discount[2], 0.3)


def test_net_price_check_counts_weeks_below_cost():
    cat = Catalog.build(n_skus=2, list_price=2.0, unit_cost=[1.2, 0.5])
    sched = Schedule(cat.sku, np.tile([0.0, 0.3, 0.5, 0.5], (2, 1)), np.zeros((2, 4)))
    check = net_price_check(sched, cat)
    assert check.weeks_below_cost.tolist() == [2, 0]
    assert check.first_week_below_cost.tolist() == [3, 0]
    assert check.min_net_price.tolist() == [1.0, 1.0]
