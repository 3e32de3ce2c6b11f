"""The Lagrangian relaxation of a shared promotion limit: bound, plans, feasibility."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from agents.baselines import Myopic
from agents.dp import solve
from agents.lagrangian import (
    CategoryDPPolicy,
    RepairedPolicy,
    WeeklyPrices,
    dual_function,
    expected_promotions,
    solve_category,
    solve_weekly,
    weekly_bound,
)
from envs.budget import CategoryEnv, promo_actions
from envs.config import RulesConfig
from ingest.errors import ConfigError
from simulator.demand import Catalog

RULES = RulesConfig(discount_levels=(0.0, 0.3))


def _catalog(n: int = 2, stock: float = 4.0) -> Catalog:
    return Catalog.build(
        n_skus=n,
        list_price=1.0,
        unit_cost=[0.4, 0.3, 0.5][:n],
        base_demand=[0.8, 1.1, 0.6][:n],
        elasticity=[-3.0, -2.5, -3.5][:n],
        salvage_value_per_unit=[0.1, 0.0, 0.2][:n],
        initial_stock=stock,
    )


def _binding_pair() -> Catalog:
    """Two elastic SKUs with cheap stock: both want the discount every week."""
    return Catalog.build(
        n_skus=2,
        list_price=1.0,
        unit_cost=0.1,
        base_demand=[0.5, 0.6],
        elasticity=[-4.0, -4.5],
        initial_stock=4.0,
    )


def _joint_optimum(catalog: Catalog, rules: RulesConfig, horizon: int, k: int) -> float:
    """The optimum under the limit by brute force: a DP over the SKUs' joint stock, every
    feasible joint action enumerated each week (independent of agents.dp)."""
    n = catalog.n_skus
    stock = int(catalog.initial_stock[0])
    depths, _ = rules.depths(np.arange(rules.n_actions))
    levels = range(stock + 1)

    def week_terms(i: int, a: int, s: int) -> list[tuple[float, float, int]]:
        """(probability, reward, next stock) of SKU i playing action a with s units."""
        d = float(depths[a])
        lam = float(catalog.base_demand[i]) * (1.0 - d) ** float(catalog.elasticity[i])
        margin = float(catalog.list_price[i]) * (1.0 - d) - float(catalog.unit_cost[i])
        out = []
        for sold in range(s + 1):
            p = stats.poisson.pmf(sold, lam) if sold < s else stats.poisson.sf(s - 1, lam)
            out.append((float(p), margin * sold, s - sold))
        return out

    value = {
        st: sum(
            (float(catalog.salvage_value_per_unit[i]) - float(catalog.unit_cost[i])) * st[i]
            for i in range(n)
        )
        for st in itertools.product(levels, repeat=n)
    }
    promo = depths > 0
    joint = [
        a for a in itertools.product(range(rules.n_actions), repeat=n) if promo[list(a)].sum() <= k
    ]
    for _ in range(horizon):
        new = {}
        for st in value:
            best = -np.inf
            for a in joint:
                total = 0.0
                outcomes = [week_terms(i, a[i], st[i]) for i in range(n)]
                for combo in itertools.product(*outcomes):
                    p = float(np.prod([c[0] for c in combo]))
                    total += p * (sum(c[1] for c in combo) + value[tuple(c[2] for c in combo)])
                best = max(best, total)
            new[st] = best
        value = new
    return value[(stock,) * n]


@pytest.mark.parametrize(("n", "horizon", "k"), [(2, 3, 1), (3, 2, 1), (3, 2, 2)])
def test_dual_value_bounds_the_brute_force_optimum(n: int, horizon: int, k: int) -> None:
    cat = _catalog(n, stock=3.0 if n == 3 else 4.0)
    sol = solve_category(cat, RULES, horizon, k)
    best = _joint_optimum(cat, RULES, horizon, k)
    assert sol.dual_value >= best - 1e-9
    # every multiplier gives a bound; lam* gives the smallest of these
    for lam in (0.0, 0.05, 0.2, 1.0):
        assert dual_function(cat, RULES, horizon, k, lam) >= sol.dual_value - 1e-9
    # without the limit the SKUs' own DPs are the optimum, above the limited one
    assert sol.unconstrained_value >= best - 1e-9


def test_limit_binds_and_multiplier_is_positive() -> None:
    cat = _binding_pair()
    sol = solve_category(cat, RULES, 3, 1)
    free = sum(solve(cat.take([i]), RULES, 3).value for i in range(2))
    assert sol.unconstrained_value == pytest.approx(free)
    assert sol.multiplier > 0
    assert sol.dual_value < sol.unconstrained_value - 1e-6
    assert sol.dual_value >= _joint_optimum(cat, RULES, 3, 1) - 1e-9


COUPON_RULES = RulesConfig(coupon_levels=(0.0, 0.1))


def _coupon_category() -> Catalog:
    return Catalog.build(
        n_skus=4,
        list_price=1.0,
        unit_cost=0.4,
        base_demand=[4.0, 6.0, 3.0, 5.0],
        elasticity=[-3.0, -2.5, -2.0, -3.5],
        coupon_coef=3.0,
        initial_stock=[60.0, 80.0, 50.0, 70.0],
    )


def test_plans_respect_the_limit_on_every_path() -> None:
    rules = COUPON_RULES
    cat = _coupon_category()
    sol = solve_category(cat, rules, 8, 1)
    solve_weekly(cat, sol, iterations=10)
    env = CategoryEnv(cat, rules, 8, max_promoted=1, n_paths=100, seed=3)
    values = {}
    for name, policy in (
        ("lagrangian", CategoryDPPolicy(sol, "lagrangian")),
        ("weekly", CategoryDPPolicy(sol, "weekly")),
        ("greedy", CategoryDPPolicy(sol, "greedy")),
        ("myopic", RepairedPolicy(Myopic(), rules, 4, 1)),
    ):
        res = env.play(policy)
        assert res.promoted.max() <= 1, name
        assert res.totals["budget_violations"].sum() == 0, name
        assert res.promoted.sum() > 0, name  # the limit is used, not avoided
        values[name] = res.totals["objective"].to_numpy()
        # no feasible plan beats the bound beyond noise
        x = values[name]
        assert x.mean() <= sol.dual_value + 3 * x.std(ddof=1) / np.sqrt(x.size)
    # the unrepaired heuristic breaks the limit, and the env reports it
    raw = env.play(Myopic())
    assert raw.totals["budget_violations"].sum() > 0
    assert raw.promoted.max() <= 1


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ConfigError, match="max_promoted"):
        solve_category(_catalog(), RULES, 3, 0)
    with pytest.raises(ConfigError, match="multiplier"):
        dual_function(_catalog(), RULES, 3, 1, -1.0)
    with pytest.raises(ConfigError, match="mode"):
        CategoryDPPolicy(solve_category(_catalog(), RULES, 2, 1), "oracle")
    with pytest.raises(ConfigError, match="solve_weekly"):
        CategoryDPPolicy(solve_category(_catalog(), RULES, 2, 1), "weekly")
    with pytest.raises(ConfigError, match="3 SKUs and the solution 2"):
        solve_weekly(_catalog(3), solve_category(_catalog(), RULES, 2, 1))


def test_action_cost_prices_actions_in_the_dp() -> None:
    cat = _catalog(1, stock=6.0)
    plain = solve(cat, RULES, 4)
    zero = solve(cat, RULES, 4, action_cost=np.zeros(RULES.n_actions), keep_q=True)
    assert zero.value == pytest.approx(plain.value)
    assert np.array_equal(zero.actions, plain.actions)
    assert zero.q is not None and plain.q is None
    # the kept Q-values are the values' argmax
    assert np.allclose(zero.q[1:].max(axis=-1), zero.values[1:])
    # a charge on every action lowers the value by the charge each week, the plan unchanged
    flat = solve(cat, RULES, 4, action_cost=np.full(RULES.n_actions, 0.25))
    assert flat.value == pytest.approx(plain.value - 4 * 0.25)
    # (with no stock left every action ties, and the charge may move the rounding)
    assert np.array_equal(flat.actions[:, 1:], plain.actions[:, 1:])
    # a prohibitive charge on the discount removes it from the plan
    dear = solve(cat, RULES, 4, action_cost=np.array([0.0, 1e6]))
    assert (dear.actions[1:] == 0).all()
    with pytest.raises(ConfigError, match="action_cost"):
        solve(cat, RULES, 4, action_cost=np.zeros(5))


def test_expected_promotions_match_simulation() -> None:
    from agents.baselines import DPPolicy

    cat = Catalog.build(
        n_skus=1, list_price=1.0, unit_cost=0.3, base_demand=3.0, elasticity=-3.0,
        initial_stock=20.0,
    )  # fmt: skip
    rules = RulesConfig(discount_levels=(0.0, 0.2, 0.4))
    sol = solve(cat, rules, 6)
    usage = expected_promotions(sol, promo_actions(rules))
    res = CategoryEnv(cat, rules, 6, max_promoted=1, n_paths=2000, seed=5).play(
        DPPolicy.from_solution(sol)
    )
    sim = res.promoted.mean(axis=0)
    se = res.promoted.std(axis=0, ddof=1) / np.sqrt(2000)
    assert 0 < usage.sum() < 6  # the plan promotes in some weeks, not all
    assert np.all(np.abs(sim - usage) <= 4 * se + 1e-9)


def test_weekly_multipliers_give_a_tighter_valid_bound() -> None:
    cat = _binding_pair()
    sol = solve_category(cat, RULES, 3, 1)
    weekly, lam = weekly_bound(cat, RULES, 3, 1, sol.multiplier, iterations=15)
    assert lam.shape == (3,) and (lam >= 0).all()
    assert _joint_optimum(cat, RULES, 3, 1) - 1e-9 <= weekly <= sol.dual_value + 1e-12


def test_weekly_plan_with_one_price_in_every_week_is_the_lagrangian_plan() -> None:
    """The week-indexed charge and refund reduce to the single multiplier's, path for path."""
    cat, H = _coupon_category(), 8
    sol = solve_category(cat, COUPON_RULES, H, 1)
    lam = np.full(H, sol.multiplier)
    cost = lam[:, None] * promo_actions(COUPON_RULES)[None, :]
    sols = [
        solve(cat.take([i]), COUPON_RULES, H, action_cost=cost, keep_q=True)
        for i in range(cat.n_skus)
    ]
    sol.weekly = WeeklyPrices(multipliers=lam, bound=sol.dual_value, solutions=sols)
    env = CategoryEnv(cat, COUPON_RULES, H, max_promoted=1, n_paths=200, seed=4)
    single = env.play(CategoryDPPolicy(sol, "lagrangian"))
    weekly = env.play(CategoryDPPolicy(sol, "weekly"))
    assert np.array_equal(single.promoted, weekly.promoted)
    assert np.array_equal(
        single.totals["objective"].to_numpy(), weekly.totals["objective"].to_numpy()
    )


def test_weekly_prices_are_solved_once_and_bound_the_optimum() -> None:
    cat = _binding_pair()
    sol = solve_category(cat, RULES, 3, 1)
    weekly = solve_weekly(cat, sol, iterations=15)
    assert solve_weekly(cat, sol) is weekly and sol.weekly is weekly
    assert weekly.multipliers.shape == (3,) and len(weekly.solutions) == 2
    best = _joint_optimum(cat, RULES, 3, 1)
    assert best - 1e-9 <= weekly.bound <= sol.dual_value + 1e-12
    # the weekly plan is feasible, so it cannot beat the optimum beyond noise
    res = CategoryEnv(cat, RULES, 3, max_promoted=1, n_paths=4000, seed=6).play(
        CategoryDPPolicy(sol, "weekly")
    )
    x = res.totals["objective"].to_numpy()
    assert res.promoted.max() <= 1
    assert x.mean() <= best + 3 * x.std(ddof=1) / np.sqrt(x.size)
