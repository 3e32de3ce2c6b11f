"""The exact DP over a category's joint stock: the brute-force optimum on small cases, the
SKUs' own DPs when the limit never binds, between the plans and the bounds, its own policy
earning its value in the category env, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from agents.dp import BellmanModel, solve
from agents.joint_dp import JointDPPolicy, _transitions, joint_optimum, solve_joint
from agents.lagrangian import CategoryDPPolicy, solve_category, solve_weekly
from envs.budget import CategoryEnv
from envs.config import RulesConfig
from experiments.suite import RULE_PROFILES
from ingest.errors import ConfigError
from simulator.demand import Catalog
from tests.agents.test_lagrangian import RULES, _binding_pair, _catalog, _joint_optimum


@pytest.mark.parametrize(("n", "horizon", "k"), [(2, 3, 1), (3, 2, 1), (3, 2, 2)])
def test_the_joint_dp_is_the_brute_force_optimum(n: int, horizon: int, k: int) -> None:
    cat = _catalog(n, stock=3.0 if n == 3 else 4.0)
    assert joint_optimum(cat, RULES, horizon, k) == pytest.approx(
        _joint_optimum(cat, RULES, horizon, k), rel=1e-12, abs=1e-12
    )


def test_a_limit_that_binds_costs_value_and_one_that_cannot_costs_none() -> None:
    cat = _binding_pair()
    own = sum(solve(cat.take([i]), RULES, 3).value for i in range(2))
    limited = joint_optimum(cat, RULES, 3, 1)
    assert limited == pytest.approx(_joint_optimum(cat, RULES, 3, 1), rel=1e-12)
    assert limited < own - 1e-6  # both SKUs want the discount: one slot binds
    assert joint_optimum(cat, RULES, 3, 2) == pytest.approx(own, rel=1e-12)


def test_transitions_are_distributions_that_never_add_stock() -> None:
    model = BellmanModel(
        _catalog(1, stock=6.0), RULES, 3, display=None, mailer=None, track_depth=False
    )
    try:
        T = _transitions(model, 0)
    finally:
        model.release()
    np.testing.assert_allclose(T.sum(axis=2), 1.0, rtol=0, atol=1e-12)
    assert (np.triu(T, k=1) == 0).all()  # next stock <= stock
    assert T[:, 0, 0].tolist() == [1.0, 1.0]  # sold out stays sold out


def test_the_optimum_lies_between_the_weekly_plan_and_the_bounds() -> None:
    """A category of three SKUs with real stock: the weekly bound and the single multiplier's
    bound are above the optimum, and the weekly plan's simulated mean is not above it beyond
    its CI (a plan cannot beat the optimum)."""
    cat = Catalog.build(
        n_skus=3,
        list_price=1.0,
        unit_cost=[0.4, 0.35, 0.45],
        base_demand=[2.0, 2.4, 1.6],
        elasticity=[-3.0, -2.5, -3.5],
        initial_stock=[14.0, 16.0, 12.0],
    )
    rules = RULE_PROFILES["none"]
    horizon, k = 6, 1
    best = joint_optimum(cat, rules, horizon, k)
    sol = solve_category(cat, rules, horizon, k)
    weekly = solve_weekly(cat, sol, iterations=10)
    assert best <= weekly.bound + 1e-9 and best <= sol.dual_value + 1e-9
    assert sol.multiplier > 0 and best < sol.unconstrained_value - 1e-6  # the limit binds
    env = CategoryEnv(cat, rules, horizon, max_promoted=k, n_paths=4000, seed=5)
    x = env.play(CategoryDPPolicy(sol, "weekly")).totals["objective"].to_numpy(float)
    half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    assert x.mean() - half <= best
    assert x.mean() >= 0.95 * best  # and the plan is close to it
    # the DP's own policy, simulated in the category env, earns its value
    joint = solve_joint(cat, rules, horizon, k)
    assert joint.value == best
    env = CategoryEnv(cat, rules, horizon, max_promoted=k, n_paths=4000, seed=5)
    played = env.play(JointDPPolicy(joint))
    y = played.totals["objective"].to_numpy(float)
    se = y.std(ddof=1) / np.sqrt(y.size)
    assert abs(y.mean() - best) <= 3 * se
    assert (played.totals["budget_violations"] == 0).all() and played.promoted.max() <= k
    d = y - x  # same paths: the optimum is not behind the weekly plan beyond the paired CI
    assert d.mean() >= -stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)


def test_the_joint_dp_refuses_what_it_cannot_solve() -> None:
    cat = _catalog(2, stock=4.0)
    with pytest.raises(ConfigError, match="max_promoted = 0"):
        joint_optimum(cat, RULES, 3, 0)
    with pytest.raises(ConfigError, match=r"25 states \(5 x 5 stock levels\) > 10"):
        joint_optimum(cat, RULES, 3, 1, max_states=10)
    with pytest.raises(ConfigError, match="max_discount"):
        joint_optimum(cat, RulesConfig(discount_levels=(0.0, 0.3), max_discount=0.2), 3, 1)
    value_only = solve_joint(cat, RULES, 3, 1, keep_policy=False)
    with pytest.raises(ConfigError, match="keep_policy=True"):
        JointDPPolicy(value_only)


def test_with_coupons_and_a_limit_that_cannot_bind_it_is_the_skus_own_dps() -> None:
    cat = Catalog.build(
        n_skus=2,
        list_price=1.0,
        unit_cost=[0.4, 0.3],
        base_demand=[1.5, 1.0],
        elasticity=[-2.5, -3.0],
        coupon_coef=[1.2, 0.8],
        holding_cost_per_unit_week=0.01,
        salvage_value_per_unit=[0.1, 0.0],
        initial_stock=[9.0, 7.0],
    )
    rules = RULE_PROFILES["coupons"]
    own = sum(solve(cat.take([i]), rules, 4).value for i in range(2))
    assert joint_optimum(cat, rules, 4, 2) == pytest.approx(own, rel=1e-12)
    assert joint_optimum(cat, rules, 4, 1) <= own + 1e-12
