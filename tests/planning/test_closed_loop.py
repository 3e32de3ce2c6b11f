"""A closed-loop policy on the open-loop simulation's random numbers."""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import DPPolicy
from envs.config import RulesConfig
from ingest.errors import ConfigError
from planning.closed_loop import replanning_value, simulate_policy
from planning.from_policy import FixedPlanPolicy, dp_plan
from planning.outcomes import simulate_schedules
from planning.schedule import Schedule
from simulator.demand import Catalog

RULES = RulesConfig(discount_levels=(0.0, 0.1, 0.3, 0.5), markdown_only=True)
H = 5


def _catalog(**over) -> Catalog:
    values = dict(
        sku=["a", "b", "c"],
        base_demand=[2.0, 4.0, 0.5],
        base_demand_se=0.4,
        elasticity=[-3.0, -1.5, -2.5],
        elasticity_se=0.5,
        dispersion=[0.0, 0.5, 0.0],
        list_price=[2.0, 3.0, 5.0],
        unit_cost=1.0,
        initial_stock=[12.0, 15.0, 4.0],
        holding_cost_per_unit_week=0.02,
        salvage_value_per_unit=0.2,
    )
    values.update(over)
    return Catalog.build(**values)


@pytest.mark.parametrize("draw", [False, True])
def test_a_policy_playing_a_fixed_plan_gives_that_plans_numbers_exactly(draw):
    cat = _catalog()
    d = np.array([[0.0, 0.1, 0.1, 0.3, 0.5], [0.0] * 5, [0.1, 0.1, 0.3, 0.3, 0.3]])
    plan = Schedule(sku=np.asarray(cat.sku), discount=d, coupon=np.zeros_like(d), name="p")
    sim = dict(n_episodes=40, seed=123, draw_parameters=draw)
    open_loop = simulate_schedules(cat, {"p": plan}, **sim)["p"].totals["profit"]
    closed = simulate_policy(cat, FixedPlanPolicy(d, d * 0, RULES, "p"), RULES, H, **sim)
    np.testing.assert_array_equal(closed, open_loop)
    other = simulate_policy(
        cat, FixedPlanPolicy(d, d * 0, RULES, "p"), RULES, H, **{**sim, "seed": 124}
    )
    assert not np.array_equal(other, open_loop)


def test_the_dp_closed_loop_earns_its_exact_value():
    """With known parameters the DP's closed loop averages its solved value (within the CI)."""
    cat = _catalog(base_demand_se=0.0, elasticity_se=0.0)
    dp = DPPolicy(max_cached=8)
    profit = simulate_policy(cat, dp, RULES, H, n_episodes=3000, seed=7, draw_parameters=False)
    for i in range(cat.n_skus):
        exact = dp.solution(cat.take([i]), RULES, H).value
        m, se = profit[i].mean(), profit[i].std(ddof=1) / np.sqrt(profit.shape[1])
        assert abs(m - exact) < 4 * se + 1e-9, (i, m, exact, se)


def test_replanning_value_is_the_paired_difference():
    rng = np.random.default_rng(0)
    plan = rng.normal(10, 2, (4, 50))
    closed = plan + rng.normal(0.5, 0.1, (4, 50))
    none = plan - 3.0
    v = replanning_value("dp", closed, plan, none, 0.95)
    assert v.gain[0] == pytest.approx((closed - plan).sum(axis=0).mean())
    assert v.gain[1] < v.gain[0] < v.gain[2]
    assert v.plan_gain_vs_none == pytest.approx(12.0)
    assert v.share_of_plan_gain == pytest.approx(v.gain[0] / 12.0)
    assert "dp closed loop" in v.describe() and set(v.metrics()) >= {"replan/gain"}
    with pytest.raises(ConfigError, match="same SKUs"):
        replanning_value("dp", closed[:2], plan, none, 0.95)


def test_the_dp_from_its_solutions_plays_as_the_dp_policy():
    cat = _catalog(start_week=[3, 60, 51])
    plan = dp_plan(cat, RULES, H, seed=2)
    assert plan.exact.all() and set(plan.policy.solutions) == {"a", "b", "c"}
    sim = dict(n_episodes=60, seed=3, draw_parameters=True)
    np.testing.assert_array_equal(
        simulate_policy(cat, plan.policy, RULES, H, **sim),
        simulate_policy(cat, DPPolicy(max_cached=8), RULES, H, **sim),
    )
    # where the DP cannot be exact it is left out, with its reason
    memory = cat.replace(ref_price_sensitivity=np.array([0.0, 0.5, 0.0]))
    partial = dp_plan(memory, RULES, H, seed=2)
    assert partial.exact.tolist() == [True, False, True]
    assert "ref_price_sensitivity" in partial.reasons["b"]
    assert (partial.schedule.discount[1] == 0).all()
    with pytest.raises(ConfigError, match="no DP solution"):
        simulate_policy(memory, partial.policy, RULES, H, **sim)
