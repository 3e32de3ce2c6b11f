"""Baselines behind the Policy interface: the DP dominates them, exact evaluation agrees with
simulation, they never break a mask, and each does what its rule says."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.baselines import (
    BestFixedDiscount,
    CertaintyEquivalent,
    DPPolicy,
    FixedDiscount,
    LinearLadder,
    Myopic,
    NoMarkdown,
    WeeksOfCover,
    default_baselines,
)
from agents.dp import DPNotExactError, evaluate_exact, solve
from agents.policy import (
    Policy,
    PolicyError,
    RandomMaskedPolicy,
    check_actions,
    nearest_allowed,
)
from agents.rollout import rollout
from envs.config import RulesConfig
from envs.context import PolicyContext
from envs.rules import action_mask, initial_decision_state
from ingest.errors import ConfigError
from simulator.demand import Catalog
from simulator.market import initial_state

RULES = {
    "none": RulesConfig(),
    "markdown_min2": RulesConfig(markdown_only=True, min_weeks_between_changes=2),
    "coupons_floor": RulesConfig(
        discount_levels=(0.0, 0.2, 0.4, 0.6),
        coupon_levels=(0.0, 0.1),
        coupon_budget_weeks=2,
        margin_floor=0.1,
        no_touch_before_exit_weeks=1,
        sell_through_target=0.8,
    ),
}


def sku(cover: float = 2.0, elasticity: float = -2.5, stock: int = 40, **kw) -> Catalog:
    """A SKU whose full-price demand over 8 weeks covers 1/cover of its stock."""
    return Catalog.build(
        n_skus=1,
        base_demand=stock / (8 * cover),
        initial_stock=stock,
        elasticity=elasticity,
        unit_cost=0.4,
        salvage_value_per_unit=0.05,
        holding_cost_per_unit_week=0.005,
        dispersion=0.2,
        coupon_coef=2.0,
        season=1.0 + 0.3 * np.cos(np.arange(52) / 8.0),
        **kw,
    )


CONFIGS = [
    (f"{r}-cover{c}-el{e}", sku(cover=c, elasticity=e), RULES[r])
    for r in RULES
    for c in (0.8, 3.0)
    for e in (-1.5, -3.0)
]


@pytest.mark.parametrize("label,cat,rules", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_dp_dominates_every_baseline_exactly(label, cat, rules):
    H = 8
    optimum = solve(cat, rules, H).value
    for policy in default_baselines(include_dp=False):
        value = evaluate_exact(cat, rules, H, policy)
        assert value <= optimum + 1e-9 * max(1.0, abs(optimum)), (policy.name, value, optimum)
    # the DP policy evaluated as a baseline reaches the optimum
    assert evaluate_exact(cat, rules, H, DPPolicy()) == pytest.approx(optimum, rel=1e-12)


@pytest.mark.parametrize(
    "policy", [CertaintyEquivalent(), WeeksOfCover(1.0, 0.3), LinearLadder(0.2, 3)], ids=str
)
def test_exact_evaluation_agrees_with_simulation(policy):
    cat, rules, H = sku(cover=2.5), RULES["markdown_min2"], 8
    exact = evaluate_exact(cat, rules, H, policy)
    mean, half = rollout(policy, cat, rules, H, n_episodes=3000, seed=5).mean_ci(0.99)
    assert abs(mean[0] - exact) <= half[0], (mean[0], exact, half[0])


def test_baselines_never_pick_a_masked_action():
    cats = Catalog.build(
        n_skus=3, base_demand=[1.0, 4.0, 9.0], initial_stock=[30, 40, 20],
        elasticity=[-1.2, -2.5, -3.5], unit_cost=[0.3, 0.6, 0.8], coupon_coef=2.0,
        age_weeks=[0, 5, 30],
    )  # fmt: skip
    rules = RulesConfig(
        discount_levels=(0.0, 0.2, 0.4, 0.6),
        coupon_levels=(0.0, 0.1),
        coupon_budget_weeks=1,
        markdown_only=True,
        min_weeks_between_changes=3,
        margin_floor=0.05,
        no_touch_after_launch_weeks=2,
        no_touch_before_exit_weeks=2,
        sell_through_target=0.9,
        sell_through_mode="hard",
    )
    for policy in [*default_baselines(), RandomMaskedPolicy(3)]:
        # rollout checks every action against the mask and raises PolicyError otherwise
        res = rollout(policy, cats, rules, 9, n_episodes=20, seed=2)
        assert res.schedule["discount"].shape == (20, 3, 9)
        # markdown-only: the depth never goes back up
        assert np.all(np.diff(res.schedule["discount"], axis=2) >= -1e-12), policy.name


class _Greedy(Policy):
    name = "always_deepest"

    def act(self, observations, masks, context=None):
        return np.full(masks.shape[0], masks.shape[1] - 1)


def test_a_policy_breaking_the_mask_is_refused():
    with pytest.raises(PolicyError, match="masked action"):
        rollout(_Greedy(), sku(), RulesConfig(max_discount=0.3), 4, seed=0)


def test_context_policies_need_a_context():
    with pytest.raises(PolicyError, match="PolicyContext"):
        CertaintyEquivalent().act(np.zeros((1, 3)), np.ones((1, 8), bool))


def _context(cat: Catalog, rules: RulesConfig, H: int) -> tuple[PolicyContext, np.ndarray]:
    dec = initial_decision_state(cat, H, rules)
    ctx = PolicyContext(cat, dec, initial_state(cat), rules, H)
    return ctx, action_mask(rules, dec, cat)


def test_each_rule_does_what_it_says():
    rules, H = RulesConfig(), 8
    # no markdown keeps list price; a ladder of 10 points every 2 weeks
    res = rollout(NoMarkdown(), sku(), rules, H, seed=1)
    assert np.all(res.schedule["discount"] == 0)
    res = rollout(LinearLadder(0.1, 2), sku(stock=10**4), rules, H, seed=1)
    np.testing.assert_allclose(res.schedule["discount"][0, 0], [0, 0, 0.1, 0.1, 0.2, 0.2, 0.3, 0.3])
    # certainty equivalent: deep when stock is far beyond demand, list price when scarce
    ctx, m = _context(sku(cover=0.3), rules, H)
    assert CertaintyEquivalent().act(np.zeros((1, 1)), m, ctx)[0] == 0
    ctx, m = _context(sku(cover=6.0), rules, H)
    assert CertaintyEquivalent().act(np.zeros((1, 1)), m, ctx)[0] >= 3
    # weeks of cover: deepens one step when cover is high, holds when low
    assert WeeksOfCover(1.0).act(np.zeros((1, 1)), m, ctx)[0] == 1
    ctx, m = _context(sku(cover=0.5), rules, H)
    assert WeeksOfCover(1.0).act(np.zeros((1, 1)), m, ctx)[0] == 0
    # best fixed = argmax of the exact values of every fixed depth
    cat = sku(cover=3.0)
    values = [evaluate_exact(cat, rules, H, FixedDiscount(i)) for i in range(rules.n_discounts)]
    ctx, m = _context(cat, rules, H)
    assert BestFixedDiscount().act(np.zeros((1, 1)), m, ctx)[0] == int(np.argmax(values))
    np.testing.assert_allclose(BestFixedDiscount().search(cat, rules, H), values)


def test_myopic_ignores_the_future_and_loses_to_the_dp():
    cat, rules, H = sku(cover=3.0), RulesConfig(), 8
    myopic = evaluate_exact(cat, rules, H, Myopic())
    assert myopic < solve(cat, rules, H).value - 1e-6


def test_memory_skus_dp_refuses_best_fixed_simulates():
    cat = sku(ref_price_sensitivity=0.5, ref_price_memory=0.6)
    with pytest.raises(DPNotExactError):
        rollout(DPPolicy(), cat, RulesConfig(), 4, seed=0)
    values = BestFixedDiscount(n_sim_episodes=20).search(cat, RulesConfig(), 4)
    assert values.shape == (8,) and np.all(np.isfinite(values))


def test_rollout_same_seed_same_numbers_and_frames():
    cats = Catalog.build(n_skus=2, base_demand=[3.0, 6.0], initial_stock=[10, 60])
    a = rollout(CertaintyEquivalent(), cats, RulesConfig(), 6, n_episodes=4, seed=9)
    b = rollout(CertaintyEquivalent(), cats, RulesConfig(), 6, n_episodes=4, seed=9)
    c = rollout(CertaintyEquivalent(), cats, RulesConfig(), 6, n_episodes=4, seed=10)
    np.testing.assert_array_equal(a.objective, b.objective)
    assert not np.array_equal(a.objective, c.objective)
    full = a.schedule_frame(active_only=False)
    assert len(full) == 4 * 2 * 6
    assert {"sku", "plan_week", "discount", "units_sold", "revenue", "stock_left"} <= set(full)
    active = a.schedule_frame()
    assert len(active) == int(a.schedule["active"].sum()) and active["active"].all()
    totals = a.totals_frame()
    np.testing.assert_allclose(totals["objective"], a.objective.ravel())
    assert np.all((totals["sell_through"] >= 0) & (totals["sell_through"] <= 1))


def test_nearest_allowed_and_random_policy():
    rules = RulesConfig(coupon_levels=(0.0, 0.1))
    m = np.ones((3, rules.n_actions), bool)
    m[0, :6] = False
    m[1, 6:8] = False
    got = nearest_allowed(rules, m, np.array([1, 3, 7]), np.array([0, 1, 1]))
    np.testing.assert_array_equal(got, [6, 5, 15])  # ties go to the shallower depth
    rnd = RandomMaskedPolicy(0)
    picks = np.concatenate([rnd.act(np.zeros((3, 1)), m) for _ in range(50)])
    check_actions(picks[:3], m)
    with pytest.raises(ConfigError):
        LinearLadder(step=0.0)


def test_dp_policy_from_solution_reuses_the_table():
    cat, rules, H = sku(cover=2.0), RULES["markdown_min2"], 6
    sol = solve(cat, rules, H)
    policy = DPPolicy.from_solution(sol)
    ctx, m = _context(cat, rules, H)
    assert policy.act(np.zeros((1, 1)), m, ctx)[0] == sol.policy(ctx.decision)[0]
    assert len(policy._cache) == 1 and next(iter(policy._cache.values())) is sol


@settings(max_examples=20, deadline=None)
@given(
    elasticity=st.floats(-4.0, -0.5),
    base=st.floats(0.2, 8.0),
    stock=st.integers(0, 25),
    salvage=st.floats(0.0, 0.5),
    dispersion=st.sampled_from([0.0, 0.5]),
    horizon=st.integers(1, 6),
    profile=st.sampled_from(sorted(RULES)),
)
def test_property_no_baseline_beats_the_dp(
    elasticity, base, stock, salvage, dispersion, horizon, profile
):
    cat = Catalog.build(
        n_skus=1, base_demand=base, initial_stock=stock, elasticity=elasticity,
        salvage_value_per_unit=salvage, dispersion=dispersion, coupon_coef=2.0,
        holding_cost_per_unit_week=0.01,
    )  # fmt: skip
    rules = RULES[profile]
    optimum = solve(cat, rules, horizon).value
    for policy in default_baselines(include_dp=False):
        assert evaluate_exact(cat, rules, horizon, policy) <= optimum + 1e-9 * max(
            1.0, abs(optimum)
        ), policy.name
