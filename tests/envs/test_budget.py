"""The category env's shared promotion limit: repair, enforcement, common random numbers."""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import FixedDiscount, NoMarkdown
from envs.budget import (
    CategoryEnv,
    check_budget_rules,
    promo_actions,
    remaining_before,
    repair,
)
from envs.config import RulesConfig
from ingest.errors import ConfigError
from simulator.demand import Catalog

RULES = RulesConfig(discount_levels=(0.0, 0.2, 0.4), coupon_levels=(0.0, 0.1))


def _cat() -> Catalog:
    return Catalog.build(
        n_skus=3,
        list_price=1.0,
        unit_cost=0.4,
        base_demand=[3.0, 4.0, 5.0],
        elasticity=-2.5,
        coupon_coef=3.0,
        initial_stock=[30.0, 40.0, 50.0],
    )


def test_promo_actions_are_any_discount_or_coupon() -> None:
    promo = promo_actions(RULES)
    d, c = RULES.depths(np.arange(RULES.n_actions))
    assert promo.tolist() == [bool(x > 0 or y > 0) for x, y in zip(d, c, strict=True)]
    assert not promo[0]


def test_repair_keeps_the_highest_priorities_per_path() -> None:
    promo = promo_actions(RULES)
    # two paths of three SKUs; action 2 (20 % off) is a promotion, 0 is not
    actions = np.array([2, 2, 2, 0, 2, 2])
    priority = np.array([0.1, 0.5, 0.3, 9.0, 0.2, 0.2])
    out = repair(actions, priority, promo, n_skus=3, max_promoted=1, off=np.arange(6) * 0)
    assert out.tolist() == [0, 2, 0, 0, 2, 0]  # ties go to the lower SKU index
    out2 = repair(actions, priority, promo, n_skus=3, max_promoted=2)
    assert out2.tolist() == [0, 2, 2, 0, 2, 2]
    assert remaining_before(np.array([[1, 0, 1, 1]]), 2).tolist() == [[2, 1, 1, 0]]


def test_rules_that_can_forbid_no_promotion_are_refused() -> None:
    check_budget_rules(RULES)
    with pytest.raises(ConfigError, match="markdown_only"):
        check_budget_rules(RulesConfig(discount_levels=(0.0, 0.3), markdown_only=True))
    with pytest.raises(ConfigError, match="max_promoted"):
        CategoryEnv(_cat(), RULES, 4, max_promoted=0, n_paths=2, seed=0)


def test_env_enforces_the_limit_and_reports_the_attempts() -> None:
    # stock enough that no SKU sells out in five weeks (a sold-out SKU takes no slot)
    cat = _cat().replace(initial_stock=np.array([300.0, 400.0, 500.0]))
    env = CategoryEnv(cat, RULES, 5, max_promoted=1, n_paths=20, seed=7)
    res = env.play(FixedDiscount(1))  # every SKU 20 % off every week
    assert res.promoted.shape == (20, 5)
    assert (res.promoted == 1).all()
    # two of the three SKUs denied every week, on every path
    assert (res.totals["budget_violations"] == 2 * 5).all()
    # only the first SKU kept its discount: the others sold at list price
    sku = res.sku_totals["slot"] % 3
    mgn = res.sku_totals.groupby(sku)["margin_given_away"].sum()
    assert mgn[0] > 0 and mgn[1] == 0 and mgn[2] == 0


def test_paths_are_common_random_numbers_and_totals_add_up() -> None:
    env = CategoryEnv(_cat(), RULES, 6, max_promoted=2, n_paths=30, seed=11)
    a, b = env.play(NoMarkdown()), env.play(NoMarkdown())
    assert np.array_equal(a.totals["objective"], b.totals["objective"])
    assert a.promoted.sum() == 0 and a.totals["budget_violations"].sum() == 0
    # every SKU plays the whole horizon, sold out or not
    assert (a.sku_totals["weeks_played"] == 6).all()
    per_path = a.sku_totals.groupby(a.sku_totals["slot"] // 3)["objective"].sum()
    assert np.allclose(per_path.to_numpy(), a.totals["objective"].to_numpy())
    st = 1 - a.totals["leftover_units"] / 120.0
    assert np.allclose(st, a.totals["sell_through"])
